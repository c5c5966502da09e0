// The JS file-name rule gives the same step counts as motion/formats.py for every shared case.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { lightningStepsFromName } from "../../js/lib/lightning_steps.js";

const golden = JSON.parse(readFileSync(new URL("../fixtures/lightning_step_names.json", import.meta.url)));

test("golden list is not empty and has both outcomes", () => {
  assert.ok(golden.cases.some(([, n]) => n === null));
  assert.ok(golden.cases.filter(([, n]) => n !== null).length >= 8);
});

for (const [name, steps] of golden.cases) {
  test(`lightningStepsFromName(${JSON.stringify(name)}) === ${steps}`, () => {
    assert.equal(lightningStepsFromName(name), steps);
  });
}

test("non-strings are not Lightning files", () => {
  assert.equal(lightningStepsFromName(undefined), null);
  assert.equal(lightningStepsFromName(4), null);
});
