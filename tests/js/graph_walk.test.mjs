import { test } from "node:test";
import assert from "node:assert/strict";
import { downstreamOfType, upstreamOfType } from "../../js/lib/graph_walk.js";

// t2v_lightning's shape plus a second, unconnected sampler and a Motion LoRA between loader and Apply.
const nodes = [
  { id: 1, type: "CheckpointLoaderSimple" },
  { id: 5, type: "ADLightning_LoadMotionModule" },
  { id: 11, type: "ADLightning_MotionLoRA" },
  { id: 6, type: "ADLightning_ApplyMotionModule" },
  { id: 7, type: "ADLightning_Sampler" },
  { id: 8, type: "VAEDecode" },
  { id: 20, type: "ADLightning_Sampler" },
  { id: 21, type: "ADLightning_Schedule" },
];
const edges = [[1, 6], [5, 11], [11, 6], [6, 7], [6, 21], [7, 8], [1, 8], [1, 20]];
const SAMPLERS = ["ADLightning_Sampler", "ADLightning_Schedule"];

test("samplers fed by a loader, through LoRA and Apply nodes", () => {
  assert.deepEqual(downstreamOfType(5, SAMPLERS, nodes, edges), [7, 21]);
});

test("a sampler fed only by the checkpoint is not the loader's", () => {
  assert.ok(!downstreamOfType(5, SAMPLERS, nodes, edges).includes(20));
  assert.deepEqual(upstreamOfType(20, ["ADLightning_LoadMotionModule"], nodes, edges), []);
});

test("loaders upstream of a sampler", () => {
  assert.deepEqual(upstreamOfType(7, ["ADLightning_LoadMotionModule"], nodes, edges), [5]);
});

test("cycles end the walk", () => {
  const loop = [[1, 2], [2, 1], [2, 3]];
  const ns = [{ id: 1, type: "A" }, { id: 2, type: "B" }, { id: 3, type: "C" }];
  assert.deepEqual(downstreamOfType(1, ["A", "C"], ns, loop), [3]);
});
