import { test } from "node:test";
import assert from "node:assert/strict";
import { AUTO, effectiveSteps, stepsLabel, syncedSteps } from "../../js/lib/steps_sync.js";

test("auto stays auto whatever the file", () => {
  assert.equal(syncedSteps(AUTO, 4, 8), AUTO);
  assert.equal(syncedSteps(AUTO, null, 2), AUTO);
});

test("a value that followed the old file follows the new one", () => {
  assert.equal(syncedSteps(4, 4, 8), 8);
  assert.equal(syncedSteps(8, 8, 1), 1);
});

test("following into a file with no step count falls back to auto", () => {
  assert.equal(syncedSteps(4, 4, null), AUTO);
});

test("the user's own value is kept", () => {
  assert.equal(syncedSteps(6, 4, 8), 6);
  assert.equal(syncedSteps(4, 8, 2), 4);
  assert.equal(syncedSteps(4, null, 8), 4, "no old N: nothing to have followed");
});

test("effective steps: auto resolves to the file's N, or the backend default", () => {
  assert.equal(effectiveSteps(AUTO, 8), 8);
  assert.equal(effectiveSteps(AUTO, null), 4);
  assert.equal(effectiveSteps(3, 8), 3);
});

test("labels say what auto means and when a value overrides the file", () => {
  assert.equal(stepsLabel(AUTO, 8), "steps (auto: 8)");
  assert.equal(stepsLabel(AUTO, null), "steps (auto: 4)");
  assert.equal(stepsLabel(8, 8), "steps");
  assert.equal(stepsLabel(6, 8), "steps (file: 8)");
  assert.equal(stepsLabel(6, null), "steps");
});
