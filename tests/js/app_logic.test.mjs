import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  atTime, buildPrompt, clipsOf, comboOptions, defaultFile, describeFailure, describeRejection, filesOnServer,
  historyError, nextProgress, parseSize, progressText, savedLatent, startProgress, STREAM_AHEAD, streamChunk,
  streamWantsChunk, textNodeFor, viewQuery, workflowsFor,
} from "../../app_page/app_logic.js";

const shipped = (name) => JSON.parse(readFileSync(new URL(`../../workflows/api/${name}.json`, import.meta.url)));
const GRAPHS = Object.fromEntries(["t2v_lightning", "t2v_motion_lora", "t2v_upscale", "t2v_long_64"]
  .map((n) => [n, shipped(n)]));
const CHOICES = { prompt: "a red fox", seed: 7, frames: 8, width: 64, height: 96, checkpoint: "mine.safetensors",
  motionModule: "animatediff_lightning_8step_comfyui.safetensors", lora: "", upscale: false };
const byType = (api, type) => Object.entries(api).filter(([, n]) => n.class_type === type);

test("the workflow follows the LoRA and upscale choices", () => {
  assert.deepEqual(workflowsFor({}), ["t2v_lightning"]);
  assert.deepEqual(workflowsFor({ lora: "z.ckpt" }), ["t2v_motion_lora"]);
  assert.deepEqual(workflowsFor({ upscale: true }), ["t2v_upscale"]);
  assert.deepEqual(workflowsFor({ upscale: true, lora: "z.ckpt" }), ["t2v_upscale", "t2v_motion_lora"]);
});

test("the choices reach the graph's inputs, and the shipped graph is not changed", () => {
  const before = JSON.stringify(GRAPHS.t2v_lightning);
  const { name, api } = buildPrompt(GRAPHS, CHOICES);
  assert.equal(name, "t2v_lightning");
  assert.equal(JSON.stringify(GRAPHS.t2v_lightning), before);
  assert.equal(api["2"].inputs.text, "a red fox");
  assert.equal(api["3"].inputs.text, GRAPHS.t2v_lightning["3"].inputs.text, "the negative stays");
  assert.deepEqual([api["4"].inputs.width, api["4"].inputs.height, api["4"].inputs.batch_size], [64, 96, 8]);
  const [[, sampler]] = byType(api, "ADLightning_Sampler");
  assert.equal(sampler.inputs.seed, 7);
  assert.equal(sampler.inputs.steps, 0, "steps follow the motion file");
  assert.equal(byType(api, "CheckpointLoaderSimple")[0][1].inputs.ckpt_name, "mine.safetensors");
  assert.equal(byType(api, "ADLightning_LoadMotionModule")[0][1].inputs.model_name, CHOICES.motionModule);
  assert.equal(Object.keys(api).length, Object.keys(GRAPHS.t2v_lightning).length);
});

test("a Motion LoRA uses the LoRA workflow; with upscaling its node is spliced before the Apply node", () => {
  const lora = buildPrompt(GRAPHS, { ...CHOICES, lora: "v2_lora_PanLeft.ckpt" });
  assert.equal(lora.name, "t2v_motion_lora");
  assert.equal(byType(lora.api, "ADLightning_LoadMotionLoRA")[0][1].inputs.lora_name, "v2_lora_PanLeft.ckpt");

  const both = buildPrompt(GRAPHS, { ...CHOICES, lora: "v2_lora_PanLeft.ckpt", upscale: true });
  assert.equal(both.name, "t2v_upscale");
  const [[loraId, loraNode]] = byType(both.api, "ADLightning_LoadMotionLoRA");
  const [[loaderId]] = byType(both.api, "ADLightning_LoadMotionModule");
  const [[, apply]] = byType(both.api, "ADLightning_ApplyMotionModule");
  const [[, template]] = byType(GRAPHS.t2v_motion_lora, "ADLightning_LoadMotionLoRA");
  assert.deepEqual(apply.inputs.motion_model, [loraId, 0]);
  assert.deepEqual(loraNode.inputs, { ...template.inputs, motion_model: [loaderId, 0],
    lora_name: "v2_lora_PanLeft.ckpt" });
  assert.equal(Object.keys(both.api).length, Object.keys(GRAPHS.t2v_upscale).length + 1);
  assert.equal(byType(both.api, "ADLightning_UpscaleFrames").length, 1);
});

test("combo choices in both /object_info forms, and the files per loader", () => {
  assert.deepEqual(comboOptions([["a", "b"], {}]), ["a", "b"]);
  assert.deepEqual(comboOptions(["COMBO", { options: ["c"] }]), ["c"]);
  assert.equal(comboOptions(["INT", { default: 1 }]), null);
  const files = filesOnServer({
    CheckpointLoaderSimple: { input: { required: { ckpt_name: [["sd.safetensors"], {}] } } },
    ADLightning_LoadMotionModule: { input: { required: { model_name: ["COMBO", { options: ["m4.safetensors"] }] } } },
  });
  assert.deepEqual(files, { checkpoint: ["sd.safetensors"], motionModule: ["m4.safetensors"], lora: [] });
  assert.equal(defaultFile(["a", "b"], "b"), "b");
  assert.equal(defaultFile(["a", "b"], "z"), "a");
  assert.equal(defaultFile([], "z"), "z", "nothing on the server: keep the workflow's name, ComfyUI will say so");
});

test("a refused prompt reads as ComfyUI states it, per node and input (as the client prints it)", () => {
  const answer = { error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation",
    details: "" }, node_errors: { 5: { class_type: "ADLightning_LoadMotionModule", errors: [{
    type: "value_not_in_list", message: "Value not in list",
    details: "model_name: 'gone.safetensors' not in ['animatediff_lightning_4step_comfyui.safetensors']",
    extra_info: { input_name: "model_name" } }] } } };
  assert.equal(describeRejection(GRAPHS.t2v_lightning, answer), [
    "ComfyUI rejected the workflow: Prompt outputs failed validation",
    "  node 5 (Load Motion Module), input 'model_name': Value not in list - model_name: 'gone.safetensors' not " +
    "in ['animatediff_lightning_4step_comfyui.safetensors']"].join("\n"));
});

test("progress: other prompts ignored, the bar only grows, complete only on executing null", () => {
  const api = GRAPHS.t2v_lightning;
  let s = startProgress(api, "p1");
  const seen = [];
  const feed = (type, data) => {
    s = nextProgress(s, { type, data: { prompt_id: "p1", ...data } });
    seen.push([s.phase, s.fraction]);
  };
  assert.equal(nextProgress(s, { type: "execution_start", data: { prompt_id: "other" } }), s);
  assert.equal(nextProgress(s, { type: "status", data: { status: {} } }), s);
  feed("execution_start", {});
  feed("execution_cached", { nodes: ["1", "2", "3"] });
  feed("executing", { node: "7" });
  feed("progress", { node: "7", value: 2, max: 4 });
  assert.equal(s.label, "Lightning Sampler 2/4");
  // Shares: checkpoint 4, two text encoders 1 each, latent 1, motion loader 3, apply 1, sampler 60, decode 10,
  // create video 2, save 3 (86 in all): the bar reflects time, not the count of nodes.
  assert.equal(s.fraction, (4 + 1 + 1 + 60 / 2) / 86, "3 cached nodes and half the sampler");
  feed("progress", { node: "7", value: 4, max: 4 });
  feed("executing", { node: "8" });
  feed("executed", { node: "9" });
  feed("execution_success", {});
  assert.equal(s.phase, "finishing", "execution_success comes before ComfyUI writes the history");
  feed("executing", { node: null });
  assert.equal(s.phase, "complete");
  const fractions = seen.map(([, f]) => f);
  assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b));
  assert.equal(fractions.at(-1), 1);
  assert.equal(nextProgress(s, { type: "executing", data: { prompt_id: "p1", node: "3" } }), s, "done is done");
});

test("progress: model loading is named, and the clock gives elapsed time and, later, the time left", () => {
  const api = GRAPHS.t2v_lightning;
  let s = startProgress(api, "p1", 1000);
  assert.equal(progressText(atTime(s, 5000)), "waiting in ComfyUI's queue", "no clock while queued");
  s = nextProgress(s, { type: "execution_start", data: { prompt_id: "p1" } }, 2000);
  s = nextProgress(s, { type: "executing", data: { prompt_id: "p1", node: "1" } }, 2100);
  assert.equal(progressText(atTime(s, 4000)), "loading models: Load Checkpoint (any SD1.5) · 2 s");
  s = nextProgress(s, { type: "executing", data: { prompt_id: "p1", node: "7" } }, 6000);
  assert.equal(s.label, "Lightning Sampler: loading models, preparing");
  s = nextProgress(s, { type: "progress", data: { prompt_id: "p1", node: "7", value: 1, max: 4 } }, 9000);
  s = atTime(s, 12000);   // 10 s in; done: checkpoint 4 + sampler 15 of 86 = 22%
  assert.equal(s.elapsed, 10);
  assert.ok(Math.abs(s.remaining - 10 * (1 - 19 / 86) / (19 / 86)) < 1e-9);
  assert.equal(progressText(s), "Lightning Sampler 1/4 · 10 s, about 36 s left");
  s = nextProgress(s, { type: "executing", data: { prompt_id: "p1", node: null } }, 20000);
  assert.equal(atTime(s, 30000), s, "a finished prompt's clock stops");
});

test("past 16 frames the page makes the clip in context windows and decodes it in slices", () => {
  for (const choices of [{ ...CHOICES, frames: 48 }, { ...CHOICES, frames: 64, upscale: true, lora: "z.ckpt" }]) {
    const { api } = buildPrompt(GRAPHS, choices);
    const [[, sampler]] = byType(api, "ADLightning_Sampler");
    const [[optionsId, options]] = byType(api, "ADLightning_ContextOptions");
    assert.deepEqual(sampler.inputs.context_options, [optionsId, 0]);
    assert.deepEqual(options.inputs, byType(GRAPHS.t2v_long_64, "ADLightning_ContextOptions")[0][1].inputs);
    assert.equal(byType(api, "VAEDecode").length, 0);
    const [[, decode]] = byType(api, "ADLightning_DecodeFrames");
    assert.deepEqual(decode.inputs.samples, [byType(api, "ADLightning_Sampler")[0][0], 0]);
  }
  const { api } = buildPrompt(GRAPHS, { ...CHOICES, frames: 16 });
  assert.equal(byType(api, "ADLightning_ContextOptions").length, 0, "16 frames: one window, as shipped");
});

test("a failure names the node and says ComfyUI's exception", () => {
  let s = startProgress(GRAPHS.t2v_lightning, "p1");
  s = nextProgress(s, { type: "execution_error", data: { prompt_id: "p1", node_id: "7",
    exception_type: "ValueError", exception_message: "too many frames\n" } });
  assert.equal(s.phase, "error");
  assert.equal(s.error, "Lightning Sampler (node 7) failed: ValueError: too many frames");
  const entry = { status: { status_str: "error", messages: [["execution_start", {}], ["execution_error",
    { node_id: "7", exception_type: "ValueError", exception_message: "too many frames" }]] } };
  assert.equal(historyError(GRAPHS.t2v_lightning, entry), s.error);
  assert.equal(historyError(GRAPHS.t2v_lightning, { status: { status_str: "success" } }), null);
});

test("clips: saved files only, MP4 plays as video, WEBP as image", () => {
  const entry = { outputs: {
    9: { images: [{ filename: "t2v_00001_.webp", subfolder: "AnimateDiff-Lightning", type: "output" }],
      animated: [true] },
    10: { images: [{ filename: "t2v_00002_.mp4", subfolder: "AnimateDiff-Lightning", type: "output" }] },
    11: { images: [{ filename: "preview.png", subfolder: "", type: "temp" }] } } };
  assert.deepEqual(clipsOf(entry).map((c) => [c.filename, c.video]),
    [["t2v_00001_.webp", false], ["t2v_00002_.mp4", true]]);
  assert.equal(viewQuery(clipsOf(entry)[0]), "filename=t2v_00001_.webp&subfolder=AnimateDiff-Lightning&type=output");
});

test("sizes", () => {
  assert.deepEqual(parseSize("512x768"), { width: 512, height: 768 });
  assert.deepEqual(parseSize("64"), { width: 64, height: 64 });
  for (const bad of ["100x64", "abc", "32", "64x"]) assert.equal(parseSize(bad), null, bad);
});

// The client (tools/client.py) and this page answer the same inputs the same way: one golden file for both.
const GOLDEN = JSON.parse(readFileSync(new URL("../fixtures/client_page_golden.json", import.meta.url)));

test("the page edits a workflow exactly as the client does (shared golden)", () => {
  for (const { workflow, choices, api } of GOLDEN.edits) {
    const built = buildPrompt({ ...GRAPHS, [workflow]: shipped(workflow) }, choices);
    assert.equal(built.name, workflow);
    assert.deepEqual(built.api, api, workflow);
  }
});

test("the page reads sizes, combos, errors and saved files as the client does (shared golden)", () => {
  for (const { text, size } of GOLDEN.sizes)
    assert.deepEqual(parseSize(text), size && { width: size[0], height: size[1] }, JSON.stringify(text));
  for (const { spec, options } of GOLDEN.combos) assert.deepEqual(comboOptions(spec), options, JSON.stringify(spec));
  for (const { workflow, which, node } of GOLDEN.text_nodes) assert.equal(textNodeFor(shipped(workflow), which), node);
  assert.equal(describeRejection(shipped(GOLDEN.rejection.workflow), GOLDEN.rejection.answer), GOLDEN.rejection.text);
  assert.equal(describeFailure(shipped(GOLDEN.failure.workflow), GOLDEN.failure.data), GOLDEN.failure.text);
  assert.deepEqual(clipsOf(GOLDEN.outputs.history).map(({ filename, subfolder, type }) => ({ filename, subfolder, type })),
    GOLDEN.outputs.files);
});

test("a stream's chunks are the graphs the client makes (shared golden)", () => {
  const { workflow, choices, name, previous, chunks, history, latent } = GOLDEN.stream;
  const base = buildPrompt({ ...GRAPHS, [workflow]: shipped(workflow) }, choices).api;
  [0, 1, 3].forEach((index, i) => assert.deepEqual(streamChunk(base, index, previous, name), chunks[i], `chunk ${index}`));
  assert.equal(savedLatent(history), latent);
  assert.throws(() => streamChunk(base, 2, null, name), /previous chunk's saved latent/);
});

// The page's stream loop (app.js chunkSaved/playNext) in simulated time: a chunk takes `make` s to make and `play` s
// to play. Returns the most chunks ever made and not yet played, and the gaps between chunks.
function simulateStream(make, play, chunks) {
  const s = { stopped: false, making: false, waiting: 0, playing: false };
  let now = 0, madeAt = null, endsAt = null, made = 0, mostAhead = 0, lastEnd = null;
  const gaps = [];
  const want = () => { if (made < chunks && streamWantsChunk(s)) { s.making = true; madeAt = now + make; } };
  const playNext = () => {
    s.playing = s.waiting > 0;
    if (s.playing) { s.waiting -= 1; if (lastEnd != null) gaps.push(now - lastEnd); endsAt = now + play; }
    want();
  };
  want();
  while (madeAt != null || endsAt != null) {
    if (madeAt != null && (endsAt == null || madeAt <= endsAt)) {
      now = madeAt; madeAt = null; s.making = false; made += 1; s.waiting += 1;
      mostAhead = Math.max(mostAhead, s.waiting);
      if (!s.playing) playNext();
      want();
    } else {
      now = endsAt; endsAt = null; lastEnd = now; playNext();
    }
  }
  return { mostAhead, gaps };
}

test("a stream stays at most STREAM_AHEAD chunks ahead of playback, with no gap once it is ahead", () => {
  assert.equal(STREAM_AHEAD, 2);
  const gpu = simulateStream(0.35, 2, 50);   // a GPU: chunks made ~6x faster than they play
  assert.equal(gpu.mostAhead, STREAM_AHEAD);
  assert.equal(gpu.gaps.length, 49);
  assert.ok(gpu.gaps.every((g) => g === 0), gpu.gaps);
  const cpu = simulateStream(25, 2, 5);      // a CPU: every chunk waits for the next to be made
  assert.equal(cpu.mostAhead, 1);
  assert.deepEqual(cpu.gaps, [23, 23, 23, 23]);
  assert.equal(streamWantsChunk({ stopped: true, making: false, waiting: 0 }), false);
  assert.equal(streamWantsChunk({ stopped: false, making: true, waiting: 0 }), false);
});
