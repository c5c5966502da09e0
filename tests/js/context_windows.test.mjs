// js/lib/context_windows.js against layouts computed by samplers/windows.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  describeWindows, describeWindowsOfInput, optionsProblem, spanText, vanDerCorput, windows,
} from "../../js/lib/context_windows.js";

const golden = JSON.parse(readFileSync(new URL("../fixtures/context_windows_golden.json", import.meta.url)));

test("van der Corput points match Python's", () => {
  assert.deepEqual(golden.van_der_corput.map((_, n) => vanDerCorput(n)), golden.van_der_corput);
});

test("golden covers every schedule and both one-window and many-window clips", () => {
  assert.deepEqual(new Set(golden.cases.map((c) => c.schedule)), new Set(["static", "uniform", "looped"]));
  assert.ok(golden.cases.some((c) => c.windows[0].length === 1));
  assert.ok(golden.cases.some((c) => c.windows[0].length > 4));
});

for (const c of golden.cases) {
  const options = { length: c.length, overlap: c.overlap, schedule: c.schedule };
  test(`${c.schedule} ${c.frames} frames, length ${c.length}, overlap ${c.overlap}`, () => {
    assert.deepEqual(c.windows.map((_, step) => windows(c.frames, options, step)), c.windows);
  });
}

test("span text shows wrap-around windows", () => {
  assert.equal(spanText([0, 1, 2, 3]), "0-3");
  assert.equal(spanText([6, 7, 0, 1]), "6-7+0-1");
  assert.equal(spanText([5]), "5");
});

test("settings that cannot run are named", () => {
  assert.match(optionsProblem({ length: 8, overlap: 8, schedule: "static" }), /smaller than the context length 8/);
  assert.match(optionsProblem({ length: 1, overlap: 0, schedule: "static" }), /at least 2/);
  assert.equal(optionsProblem({ length: 16, overlap: 4, schedule: "looped" }), null);
  assert.match(describeWindows(48, { length: 8, overlap: 9, schedule: "static" }, 4), /^⚠/);
});

test("the node text for a static 48-frame clip", () => {
  assert.equal(describeWindows(48, { length: 16, overlap: 4, schedule: "static" }, 4),
    "48 frames, static: 4 windows of 16 (16 window runs over 4 steps)\n0-15 · 11-26 · 21-36 · 32-47");
});

test("uniform shows one line per step; short clips need no windows", () => {
  const text = describeWindows(40, { length: 16, overlap: 4, schedule: "uniform" }, 4);
  assert.equal(text.split("\n").length, 5);
  assert.match(text.split("\n")[2], /^step 2: /);
  assert.equal(describeWindows(16, { length: 16, overlap: 4, schedule: "static" }, 4),
    "16 frames fit in one window of 16: no windows needed");
  assert.match(describeWindows(undefined, { length: 16, overlap: 4, schedule: "static" }, 4), /unknown/);
});

test("a sampler fed by an encoded clip: how the windows will cover it, or the options' problem", () => {
  assert.equal(describeWindowsOfInput({ length: 16, overlap: 4, schedule: "uniform" }),
    "frames come from the input clip: windows of 16 overlapping by 4 (uniform) cover it when it runs; " +
    "clips of 16 frames or fewer need none");
  assert.match(describeWindowsOfInput({ length: 8, overlap: 9, schedule: "static" }), /^⚠/);
});
