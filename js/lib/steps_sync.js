// What the sampler's steps widget becomes when the motion-module file changes, and what it will run.
// steps 0 means "auto": the backend uses the loaded file's Lightning step count (nodes/sampler_nodes.py).
export const AUTO = 0;
// sampler_nodes.DEFAULT_STEPS: auto on a file with no step count (tests/js/steps_default.test.mjs keeps them equal)
export const BACKEND_DEFAULT_STEPS = 4;

/**
 * New steps value after the file changes from one with `oldN` steps to one with `newN` (null: not a Lightning file).
 * A value that followed the old file (auto, or equal to its N) follows the new one; anything else is the user's
 * override and stays.
 */
export function syncedSteps(current, oldN, newN) {
  if (current === AUTO) return AUTO;
  if (oldN != null && current === oldN) return newN ?? AUTO;
  return current;
}

/** Steps the sampler will run with this widget value and file N (null when no single file feeds it). */
export function effectiveSteps(current, fileN) {
  if (current !== AUTO) return current;
  return fileN ?? BACKEND_DEFAULT_STEPS;
}

/** Label for the steps widget, so "0" never hides what will run. */
export function stepsLabel(current, fileN) {
  if (current !== AUTO) {
    return fileN != null && current !== fileN ? `steps (file: ${fileN})` : "steps";
  }
  return fileN != null ? `steps (auto: ${fileN})` : `steps (auto: ${BACKEND_DEFAULT_STEPS})`;
}
