// Which frames each context window covers: a port of samplers/windows.py (window_starts / windows), so the
// Context Windows node can show the layout before anything runs. tests/fixtures/context_windows_golden.json holds
// layouts computed by the Python code; tests/js/context_windows.test.mjs and tests/unit/test_windows_golden.py
// check both implementations against it.
export const SCHEDULES = ["static", "uniform", "looped"];

// num / den rounded half up, in integers, as windows._round_div.
const roundDiv = (num, den) => Math.floor((2 * num + den) / (2 * den));
const ceilDiv = (num, den) => Math.floor((num + den - 1) / den);

export function staticStarts(frames, length, overlap) {
  if (frames <= length) return [0];
  const count = ceilDiv(frames - length, length - overlap) + 1;
  return Array.from({ length: count }, (_, j) => roundDiv(j * (frames - length), count - 1));
}

/** n-th point of the base-2 van der Corput sequence: 0, 1/2, 1/4, 3/4, 1/8, ... */
export function vanDerCorput(n) {
  let value = 0;
  let scale = 0.5;
  while (n) {
    value += scale * (n & 1);
    n >>= 1;
    scale /= 2;
  }
  return value;
}

export function uniformStarts(frames, length, overlap, step) {
  if (frames <= length) return [0];
  const stride = length - overlap;
  const shift = Math.floor(vanDerCorput(step) * stride + 0.5);
  const starts = [];
  let start = shift ? shift - stride : 0;
  while (!starts.length || starts[starts.length - 1] < frames - length) {
    const clamped = Math.min(Math.max(start, 0), frames - length);
    if (!starts.length || clamped !== starts[starts.length - 1]) starts.push(clamped);
    start += stride;
  }
  // A window squeezed between neighbours that already share `overlap` frames without it only costs time.
  let k = 1;
  while (k < starts.length - 1) {
    if (starts[k + 1] - starts[k - 1] <= stride) starts.splice(k, 1);
    else k += 1;
  }
  return starts;
}

export function loopedStarts(frames, length, overlap) {
  if (frames <= length) return [0];
  const count = ceilDiv(frames, length - overlap);
  return Array.from({ length: count }, (_, j) => roundDiv(j * frames, count));
}

/** Why these settings cannot run (the same rules as WindowOptions), or null. */
export function optionsProblem({ length, overlap, schedule }) {
  if (!Number.isInteger(length) || length < 2) return `context length must be at least 2 frames`;
  if (!Number.isInteger(overlap) || overlap < 0) return `context overlap must be 0 or more frames`;
  if (overlap >= length) return `overlap ${overlap} must be smaller than the context length ${length}`;
  if (!SCHEDULES.includes(schedule)) return `unknown schedule '${schedule}'`;
  return null;
}

export function windowStarts(frames, { length, overlap, schedule }, step = 0) {
  if (schedule === "uniform") return uniformStarts(frames, length, overlap, step);
  if (schedule === "looped") return loopedStarts(frames, length, overlap);
  return staticStarts(frames, length, overlap);
}

/** Frame indices of every window at sampler step `step` (0-based), as samplers/windows.py windows(). */
export function windows(frames, options, step = 0) {
  if (!(frames >= 1)) throw new RangeError(`a clip needs at least one frame, got ${frames}`);
  const length = Math.min(options.length, frames);
  return windowStarts(frames, options, step).map((s) => Array.from({ length }, (_, i) => (s + i) % frames));
}

/** "0-15", or "56-63+0-7" for a window that wraps around the end of a looped clip. */
export function spanText(window) {
  const parts = [];
  let first = window[0];
  for (let i = 1; i <= window.length; i++) {
    if (i === window.length || window[i] !== window[i - 1] + 1) {
      const last = window[i - 1];
      parts.push(first === last ? `${first}` : `${first}-${last}`);
      first = window[i];
    }
  }
  return parts.join("+");
}

/** What the node shows: which frames each window covers, per sampler step where the layout moves. */
export function describeWindows(frames, options, steps) {
  const problem = optionsProblem(options);
  if (problem) return `⚠ ${problem}`;
  if (!Number.isInteger(frames) || frames < 1) return "frame count unknown (connect the sampler's latent)";
  if (frames <= options.length) return `${frames} frames fit in one window of ${options.length}: no windows needed`;
  const runSteps = Math.max(1, steps);
  const layouts = Array.from({ length: runSteps }, (_, step) => windows(frames, options, step));
  const evaluations = layouts.reduce((sum, layout) => sum + layout.length, 0);
  const uniform = options.schedule === "uniform";
  const lines = (uniform ? layouts : layouts.slice(0, 1)).map(
    (layout, step) => `${uniform ? `step ${step + 1}: ` : ""}${layout.map(spanText).join(" · ")}`,
  );
  const head = `${frames} frames, ${options.schedule}: ${layouts[0].length} windows of ${options.length} ` +
    `(${evaluations} window runs over ${runSteps} steps)`;
  return [head, ...lines].join("\n");
}

/** What the node shows when the sampler's latent comes from a clip (e.g. VAE Encode of a video): the frame count is
 * only known when the graph runs, so say how windows will be laid over it instead of "unknown". */
export function describeWindowsOfInput(options) {
  const problem = optionsProblem(options);
  if (problem) return `⚠ ${problem}`;
  return `frames come from the input clip: windows of ${options.length} overlapping by ${options.overlap} ` +
    `(${options.schedule}) cover it when it runs; clips of ${options.length} frames or fewer need none`;
}
