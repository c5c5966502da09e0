// The prompt-to-clip page's logic, without the DOM: which shipped API workflow to queue and how to set the user's
// choices in it, what ComfyUI's websocket messages mean for one prompt's progress, how ComfyUI's errors read, and
// which saved files are the clip. app.js wires this to the page; tests/js/app_logic.test.mjs tests it in node.
// The client (tools/client.py) makes the same edits in Python; both are tested against one golden file,
// tests/fixtures/client_page_golden.json (written from the client by `python -m dev.refresh_client_golden`).

export const WORKFLOW = { plain: "t2v_lightning", lora: "t2v_motion_lora", upscale: "t2v_upscale",
  long: "t2v_long_64" };
// Past the 16 frames Lightning was trained on, a clip is made in context windows (the shipped long workflow's
// Context Windows node) and decoded a few frames at a time, as t2v_long_64 does; the client does the same.
export const WINDOWS_ABOVE = 16;
export const LOADERS = {
  checkpoint: ["CheckpointLoaderSimple", "ckpt_name"],
  motionModule: ["ADLightning_LoadMotionModule", "model_name"],
  lora: ["ADLightning_LoadMotionLoRA", "lora_name"],
};
const SEED_INPUTS = ["seed", "noise_seed"];
const OUTPUT_KINDS = ["images", "gifs", "videos", "audio", "animated"];
const VIDEO_EXTENSIONS = [".mp4", ".webm", ".mov", ".mkv"];

const isLink = (v) => Array.isArray(v) && v.length === 2 && typeof v[0] === "string";
const nodesOf = (api, type) => Object.keys(api).filter((k) => api[k].class_type === type);

/** The shipped workflows a set of choices needs: the one to queue first, then where spliced nodes come from. */
export function workflowsFor(choices) {
  const names = choices.upscale ? (choices.lora ? [WORKFLOW.upscale, WORKFLOW.lora] : [WORKFLOW.upscale])
    : [choices.lora ? WORKFLOW.lora : WORKFLOW.plain];
  return choices.frames > WINDOWS_ABOVE ? [...names, WORKFLOW.long] : names;
}

/** The choices of a combo input in /object_info: old form [[...], {}] or V3 ["COMBO", {options: [...]}]. */
export function comboOptions(spec) {
  if (!Array.isArray(spec) || !spec.length) return null;
  const options = Array.isArray(spec[0]) ? spec[0] : spec[0] === "COMBO" ? spec[1]?.options : null;
  return Array.isArray(options) && options.every((o) => typeof o === "string") ? options : null;
}

/** The files the server offers for each loader the page sets, from /object_info/<class> answers merged. */
export function filesOnServer(objectInfo) {
  const files = {};
  for (const [key, [type, input]] of Object.entries(LOADERS)) {
    const inputs = objectInfo[type]?.input ?? {};
    files[key] = comboOptions(inputs.required?.[input] ?? inputs.optional?.[input]) ?? [];
  }
  return files;
}

/** The default of each choice: the file the shipped workflow names if the server has it, else the first it has. */
export function defaultFile(files, preferred) {
  return files.includes(preferred) ? preferred : (files[0] ?? preferred);
}

/** The text node that feeds the samplers' `which` (positive/negative) input, followed upstream. */
export function textNodeFor(api, which) {
  const found = new Set();
  for (const node of Object.values(api)) {
    const link = node.inputs[which];
    if (!isLink(link)) continue;
    const seen = new Set();
    const todo = [link[0]];
    while (todo.length) {
      const key = todo.pop();
      if (seen.has(key) || !(key in api)) continue;
      seen.add(key);
      if (typeof api[key].inputs.text === "string") {
        found.add(key);
        break;
      }
      todo.push(...Object.values(api[key].inputs).filter(isLink).map((v) => v[0]));
    }
  }
  if (found.size !== 1) throw new Error(`the workflow has ${found.size || "no"} text node(s) feeding '${which}'`);
  return [...found][0];
}

function setAll(api, names, value) {
  let set = 0;
  for (const node of Object.values(api))
    for (const name of names)
      if (name in node.inputs && !isLink(node.inputs[name])) {
        node.inputs[name] = value;
        set += 1;
      }
  if (!set) throw new Error(`no node in the workflow has a ${names.join("/")} input`);
}

function setLoader(api, [type, input], value) {
  const keys = nodesOf(api, type);
  if (!keys.length) throw new Error(`the workflow has no ${type} node`);
  for (const key of keys) api[key].inputs[input] = value;
}

const newId = (api) => String(Math.max(0, ...Object.keys(api).map(Number).filter(Number.isFinite)) + 1);

/** Put the Motion LoRA node of the LoRA workflow between the motion loader and the Apply node of `api`. */
function spliceLoRA(api, loraGraph) {
  const [template] = nodesOf(loraGraph, LOADERS.lora[0]).map((k) => loraGraph[k]);
  const [apply] = nodesOf(api, "ADLightning_ApplyMotionModule");
  if (!template || !apply) throw new Error("cannot add a Motion LoRA to this workflow");
  const id = newId(api);
  api[id] = structuredClone(template);
  api[id].inputs.motion_model = api[apply].inputs.motion_model;
  api[apply].inputs.motion_model = [id, 0];
}

/** Context windows for a long clip: the long workflow's Context Windows node on every Lightning sampler that has
 * none, and its sliced decode in place of each VAE Decode (same inputs). */
function spliceWindows(api, longGraph) {
  const [options] = nodesOf(longGraph, "ADLightning_ContextOptions").map((k) => longGraph[k]);
  const [decode] = nodesOf(longGraph, "ADLightning_DecodeFrames").map((k) => longGraph[k]);
  if (!options || !decode) throw new Error("the long-clip workflow has no Context Windows or sliced decode node");
  for (const key of nodesOf(api, "ADLightning_Sampler")) {
    if (api[key].inputs.context_options) continue;
    const id = newId(api);
    api[id] = structuredClone(options);
    api[key].inputs.context_options = [id, 0];
  }
  for (const key of nodesOf(api, "VAEDecode"))
    api[key] = { ...structuredClone(decode), inputs: { ...decode.inputs, ...api[key].inputs } };
}

/**
 * The API prompt to queue for the page's choices: {prompt, seed, frames, width, height, checkpoint, motionModule,
 * lora ("" = none), upscale}. `graphs` maps workflow names (workflowsFor) to the shipped API graphs.
 */
export function buildPrompt(graphs, choices) {
  const [name, ...sources] = workflowsFor(choices);
  const loraSource = sources.find((s) => s === WORKFLOW.lora);
  const api = structuredClone(graphs[name]);
  api[textNodeFor(api, "positive")].inputs.text = choices.prompt;
  setAll(api, SEED_INPUTS, choices.seed);
  const latents = Object.values(api).filter((n) => ["width", "height", "batch_size"].every((k) => k in n.inputs));
  if (!latents.length) throw new Error("the workflow has no empty-latent node");
  for (const node of latents)
    Object.assign(node.inputs, { width: choices.width, height: choices.height, batch_size: choices.frames });
  if (choices.checkpoint) setLoader(api, LOADERS.checkpoint, choices.checkpoint);
  if (choices.motionModule) {
    setLoader(api, LOADERS.motionModule, choices.motionModule);
    setAll(api, ["steps"], 0); // 0 = the file's Lightning step count: steps follow the file
  }
  if (choices.lora) {
    if (loraSource) spliceLoRA(api, graphs[loraSource]);
    setLoader(api, LOADERS.lora, choices.lora);
  }
  if (choices.frames > WINDOWS_ABOVE) spliceWindows(api, graphs[WORKFLOW.long]);
  return { name, api };
}

// --- streams: chunk after chunk, each continuing the last (tools/client.py stream_chunk builds the same graphs) ----
export const STREAM_OVERLAP = 4;
export const STREAM_FRAMES = 16;
// Chunks made but not yet played that a stream keeps at most. A GPU makes a chunk several times faster than it plays;
// without a bound the page would queue chunk after chunk ahead of playback (each a preloaded video, each made with
// the prompt of its time), so memory would grow and a new prompt would wait behind them all.
export const STREAM_AHEAD = 2;

/** Whether a stream queues its next chunk now: it is running, not making one already, and not STREAM_AHEAD ahead. */
export function streamWantsChunk({ stopped, making, waiting }) {
  return !stopped && !making && waiting < STREAM_AHEAD;
}

/**
 * Chunk `index` (from 0) of the stream `name`: the text-to-video prompt `api` (one Lightning sampler, the chunk's
 * frames) that also saves the sampled latent; from chunk 1 on it continues `previousLatent` (the previous chunk's
 * saved latent in ComfyUI's output folder) through Extend Video and decodes only the new frames.
 */
export function streamChunk(api, index, previousLatent, name) {
  api = structuredClone(api);
  const samplers = nodesOf(api, "ADLightning_Sampler");
  const latents = Object.values(api).filter((n) => ["width", "height", "batch_size"].every((k) => k in n.inputs));
  if (samplers.length !== 1 || latents.length !== 1)
    throw new Error("a stream needs a text-to-video workflow with one Lightning sampler and one empty latent");
  const [sampler] = samplers;
  const frames = latents[0].inputs.batch_size;
  if (!(frames > STREAM_OVERLAP && frames <= 32)) throw new Error(`a stream chunk has ${frames} frames: give ` +
    `${STREAM_OVERLAP + 1}-32 (16 is what Lightning was trained on)`);
  const prefix = `AnimateDiff-Lightning/stream/${name}`;
  for (const key of [...nodesOf(api, "SaveVideo"), ...nodesOf(api, "SaveAnimatedWEBP")])
    api[key].inputs.filename_prefix = prefix;
  api[newId(api)] = { class_type: "SaveLatent", inputs: { samples: [sampler, 0], filename_prefix: `${prefix}_latent` },
    _meta: { title: "Save Latent (the next chunk continues it)" } };
  if (index === 0) return api;
  if (!previousLatent) throw new Error(`stream chunk ${index} needs the previous chunk's saved latent`);
  const empty = api[sampler].inputs.latent_image[0];
  const load = newId(api);
  api[load] = { class_type: "LoadLatent", inputs: { latent: `${previousLatent} [output]` },
    _meta: { title: "Load Latent (the previous chunk)" } };
  const extend = newId(api);
  api[extend] = { class_type: "ADLightning_ExtendVideo", inputs: { video: [load, 0], overlap: STREAM_OVERLAP, frames,
    strength: 1.0, init: "noise", first_frame: (index - 1) * (frames - STREAM_OVERLAP) },
  _meta: { title: "Extend Video (next chunk)" } };
  api[sampler].inputs.latent_image = [extend, 0];
  const join = newId(api);
  api[join] = { class_type: "ADLightning_JoinChunks", inputs: { chunk: [sampler, 0], overlap: STREAM_OVERLAP },
    _meta: { title: "Join Chunks (the new frames)" } };
  for (const node of Object.values(api))
    if (["VAEDecode", "ADLightning_DecodeFrames"].includes(node.class_type) &&
        JSON.stringify(node.inputs.samples) === JSON.stringify([sampler, 0])) node.inputs.samples = [join, 0];
  if (!Object.values(api).some((n) => Object.values(n.inputs).some((v) => isLink(v) && v[0] === empty)))
    delete api[empty];
  return api;
}

/** The latent a stream chunk saved, as Load Latent names a file of the output folder ("subfolder/file"). */
export function savedLatent(entry) {
  for (const output of Object.values(entry?.outputs ?? {}))
    for (const item of output.latents ?? [])
      if (item && typeof item === "object" && item.type === "output")
        return [item.subfolder, item.filename].filter(Boolean).join("/");
  return null;
}

const title = (api, id) => api?.[String(id)]?._meta?.title ?? api?.[String(id)]?.class_type ?? String(id);

/** ComfyUI's answer to a refused POST /prompt, as it states it: one line, then one per node and input. */
export function describeRejection(api, answer) {
  const error = answer?.error ?? {};
  const lines = [`ComfyUI rejected the workflow: ${error.message ?? "invalid prompt"}` +
    (error.details ? ` (${error.details})` : "")];
  for (const [id, info] of Object.entries(answer?.node_errors ?? {})) {
    const name = api?.[id]?._meta?.title ?? info.class_type ?? "?";
    for (const e of info.errors ?? []) {
      const input = e.extra_info?.input_name;
      lines.push(`  node ${id} (${name})${input ? `, input '${input}'` : ""}: ${e.message ?? ""}` +
        (e.details ? ` - ${e.details}` : ""));
    }
  }
  return lines.join("\n");
}

/** An execution_error message as one line: the node, the exception type and ComfyUI's message. */
export function describeFailure(api, data) {
  return `${title(api, data.node_id)} (node ${data.node_id}) failed: ${data.exception_type ?? "error"}: ` +
    `${String(data.exception_message ?? "").trim()}`;
}

// How much of a run each kind of node takes, roughly (2-core CPU and H200 alike: the sampler dominates, then the
// upscale and the decode; loading models is seconds on a first run). The bar moves by these shares, so it reflects
// time rather than the count of nodes; a node's own progress messages move it within its share.
const NODE_SHARE = {
  ADLightning_Sampler: 60, KSampler: 60, SamplerCustom: 60, SamplerCustomAdvanced: 60,
  ADLightning_UpscaleFrames: 30, VAEDecode: 10, ADLightning_DecodeFrames: 10, VAEEncode: 5, ADLightning_EncodeFrames: 5,
  CheckpointLoaderSimple: 4, ADLightning_LoadMotionModule: 3, ADLightning_LoadMotionLoRA: 2, UpscaleModelLoader: 2,
  ADLightning_LoadUpscaleModel: 2, CreateVideo: 2, SaveVideo: 3, SaveAnimatedWEBP: 3,
};
const LOADING = new Set(["CheckpointLoaderSimple", "ADLightning_LoadMotionModule", "ADLightning_LoadMotionLoRA",
  "UpscaleModelLoader", "ADLightning_LoadUpscaleModel", "ControlNetLoader", "LoraLoader"]);
const share = (api, id) => NODE_SHARE[api?.[id]?.class_type] ?? 1;

/** A prompt's progress before any message: waiting in ComfyUI's queue. `now`: milliseconds (Date.now()). */
export function startProgress(api, promptId, now = 0) {
  return { promptId, api, total: Object.keys(api).reduce((sum, id) => sum + share(api, id), 0), done: [],
    node: null, value: 0, max: 1, phase: "queued", fraction: 0, label: "waiting in ComfyUI's queue", error: null,
    queuedAt: now, startedAt: null, elapsed: 0, remaining: null };
}

function withFraction(s) {
  const running = s.node && !s.done.includes(s.node) ? Math.min(1, s.value / (s.max || 1)) * share(s.api, s.node) : 0;
  const done = s.done.reduce((sum, id) => sum + share(s.api, id), 0);
  return { ...s, fraction: Math.min(1, (done + running) / s.total) };
}

/** The progress with its clock read at `now`: seconds since the prompt started running, and an estimate of the
 * seconds left (from the share of the run done so far; null until a tenth of it is done). */
export function atTime(s, now) {
  if (s.startedAt == null || s.phase === "complete" || s.phase === "error") return s;
  const elapsed = Math.max(0, (now - s.startedAt) / 1000);
  const remaining = s.fraction >= 0.1 && s.fraction < 1 ? elapsed * (1 - s.fraction) / s.fraction : null;
  return { ...s, elapsed, remaining };
}

/** The status line: what runs now, the time so far and, once it can be estimated, the time left. */
export function progressText(s) {
  if (s.phase !== "running" || s.startedAt == null) return s.label;
  const clock = `${Math.round(s.elapsed)} s`;
  return s.remaining == null ? `${s.label} · ${clock}`
    : `${s.label} · ${clock}, about ${Math.ceil(s.remaining)} s left`;
}

/**
 * The progress after one websocket message (parsed JSON). Messages of other prompts change nothing. Phases: queued,
 * running, finishing (execution_success: ComfyUI has not written the history yet), complete (`executing` with node
 * null: the history is written, outputs can be read), error.
 */
export function nextProgress(s, message, now = 0) {
  const { type, data = {} } = message ?? {};
  if (data.prompt_id !== s.promptId || s.phase === "complete" || s.phase === "error") return s;
  const addDone = (ids) => [...new Set([...s.done, ...ids.map(String)])];
  switch (type) {
    case "execution_start":
      return { ...s, phase: "running", label: "starting", startedAt: now };
    case "execution_cached":
      return withFraction({ ...s, phase: "running", done: addDone(data.nodes ?? []) });
    case "executing": {
      if (data.node == null) return { ...s, phase: "complete", fraction: 1, label: "done" };
      const node = String(data.node);
      // Loaders read files; ComfyUI moves the models into memory when the sampler starts, before its first step.
      const label = LOADING.has(s.api?.[node]?.class_type) ? `loading models: ${title(s.api, node)}`
        : share(s.api, node) >= NODE_SHARE.ADLightning_Sampler ? `${title(s.api, node)}: loading models, preparing`
          : title(s.api, node);
      return withFraction({ ...s, phase: "running", done: s.node ? addDone([s.node]) : s.done,
        node, value: 0, max: 1, label });
    }
    case "progress":
      return withFraction({ ...s, node: String(data.node), value: data.value, max: data.max,
        label: `${title(s.api, data.node)} ${data.value}/${data.max}` });
    case "executed":
      return withFraction({ ...s, done: addDone([data.node]) });
    case "execution_success":
      return { ...s, phase: "finishing", fraction: 1, label: "saving" };
    case "execution_error":
      return { ...s, phase: "error", error: describeFailure(s.api, data), label: "failed" };
    case "execution_interrupted":
      return { ...s, phase: "error", error: "the prompt was interrupted on the server", label: "interrupted" };
    default:
      return s;
  }
}

/** The saved files of a history entry (type output, not previews), each with whether it plays as a <video>. */
export function clipsOf(entry) {
  const clips = [];
  for (const output of Object.values(entry?.outputs ?? {}))
    for (const kind of OUTPUT_KINDS)
      for (const item of output[kind] ?? [])
        if (item && typeof item === "object" && item.type === "output")
          clips.push({ filename: item.filename, subfolder: item.subfolder ?? "", type: item.type,
            video: VIDEO_EXTENSIONS.some((ext) => item.filename.toLowerCase().endsWith(ext)) });
  return clips;
}

/** The failure recorded in a history entry, or null. */
export function historyError(api, entry) {
  const status = entry?.status ?? {};
  if (status.status_str !== "error") return null;
  const error = (status.messages ?? []).find((m) => m[0] === "execution_error");
  return error ? describeFailure(api, error[1]) : "the prompt failed on the server (see its log)";
}

/** The /view query of a saved file. */
export function viewQuery(clip) {
  return new URLSearchParams({ filename: clip.filename, subfolder: clip.subfolder, type: clip.type }).toString();
}

/** "512x512" or "512" -> {width, height}; null unless both are multiples of 8 and at least 64. */
export function parseSize(text) {
  const [w, h = w] = String(text).toLowerCase().split("x").map((v) => Number(v.trim()));
  const ok = (v) => Number.isInteger(v) && v >= 64 && v % 8 === 0;
  return ok(w) && ok(h) ? { width: w, height: h } : null;
}
