// js/lib/steps_sync.js copies the backend's default step count (what steps 0 runs on a file with no Lightning step
// count) to label the widget; the copy must follow nodes/sampler_nodes.py, which the JS cannot import.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BACKEND_DEFAULT_STEPS } from "../../js/lib/steps_sync.js";

test("BACKEND_DEFAULT_STEPS is sampler_nodes.DEFAULT_STEPS", () => {
  const source = readFileSync(new URL("../../nodes/sampler_nodes.py", import.meta.url), "utf8");
  const found = /^DEFAULT_STEPS = (\d+)$/m.exec(source);
  assert.ok(found, "nodes/sampler_nodes.py no longer defines DEFAULT_STEPS = <int>; update this guard");
  assert.equal(BACKEND_DEFAULT_STEPS, Number(found[1]));
});
