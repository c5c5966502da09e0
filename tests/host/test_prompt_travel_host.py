"""Host tier: prompt travel and motion scale in a real ComfyUI (random weights, 64 px).

What reaches the UNet is recorded by test-only nodes in a second custom-node folder that this module writes to a
temporary directory and hands to its own ComfyUI (--extra-model-paths-config, key custom_nodes); nothing test-only is
in the pack. The recorder is core's model_function_wrapper: it sees, per UNet call, the context window core's handler
set (transformer_options["context_window"]), which batch rows are cond/uncond, and the c_crossattn rows.

One prompt holds every sampler branch (the checkpoint loads once; a branch is seconds at 64 px):
  travel_cfg1 / travel_cfg2: the shipped t2v_prompt_travel graph at 20 frames in 8-frame windows (overlap 2), recorded;
  one_key / plain: one-keyframe schedule vs CLIPTextEncode of the same text, same seed (bit-identical latents);
  scale_default: the Apply node without motion_scale inputs (as every workflow before them) vs an explicit 1.0;
  independent: 8 frames at motion scale 0 (and 1, as a control) with frame 3's noise swapped (batch_index).
"""
from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import torch

from dev.harness.comfy_server import ComfyServer, PromptFailed
from dev.harness.listener import saved_latent
from adlightning.samplers.prompt_schedule import with_prefix_suffix
from tests.host.conftest import add_save_latent, comfy_path, load_api, model_files, nodes_of, small

FRAMES = 20
SCHEDULE = "4: a red apple on a table\n10: a green pear on a table\n14: a yellow banana on a table"
FIRST, LAST = "a red apple on a table", "a yellow banana on a table"
NEGATIVE = "blurry, low quality, watermark"

RECORDER = textwrap.dedent('''
    """Test-only nodes for tests/host/test_prompt_travel_host.py (written there, never shipped)."""
    import os

    import torch


    class RecordUNetInputs:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": ("MODEL",), "directory": ("STRING", {"default": ""})}}

        RETURN_TYPES = ("MODEL",)
        FUNCTION = "patch"
        CATEGORY = "testing"

        def patch(self, model, directory):
            model = model.clone()
            os.makedirs(directory, exist_ok=True)
            count = [0]

            def wrapper(apply_model, args):
                c = args["c"]
                window = c.get("transformer_options", {}).get("context_window")
                torch.save({"window": None if window is None else list(window.index_list),
                            "cond_or_uncond": list(args["cond_or_uncond"]),
                            "context": c["c_crossattn"].detach().cpu().clone()},
                           os.path.join(directory, f"{count[0]:05d}.pt"))
                count[0] += 1
                return apply_model(args["input"], args["timestep"], **c)

            model.set_model_unet_function_wrapper(wrapper)
            return (model,)


    class SaveConditioning:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"conditioning": ("CONDITIONING",), "path": ("STRING", {"default": ""})}}

        RETURN_TYPES = ()
        FUNCTION = "save"
        OUTPUT_NODE = True
        CATEGORY = "testing"

        def save(self, conditioning, path):
            torch.save([[c.cpu(), {k: v.cpu() for k, v in d.items() if isinstance(v, torch.Tensor)}]
                        for c, d in conditioning], path)
            return {}


    class SetBatchIndex:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"samples": ("LATENT",), "batch_index": ("STRING", {"default": ""})}}

        RETURN_TYPES = ("LATENT",)
        FUNCTION = "run"
        CATEGORY = "testing"

        def run(self, samples, batch_index):
            out = samples.copy()
            out["batch_index"] = [int(i) for i in batch_index.split(",")]
            return (out,)


    NODE_CLASS_MAPPINGS = {"ADLTest_RecordUNetInputs": RecordUNetInputs, "ADLTest_SaveConditioning": SaveConditioning,
                           "ADLTest_SetBatchIndex": SetBatchIndex}
''')


@pytest.fixture(scope="module")
def travel_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("travel")
    (root / "nodes" / "adl_test_recorder").mkdir(parents=True)
    (root / "nodes" / "adl_test_recorder" / "__init__.py").write_text(RECORDER)
    config = root / "extra_paths.yaml"
    config.write_text(f"adl_tests:\n  custom_nodes: {root / 'nodes'}\n")
    with ComfyServer(comfy_path(), model_files(),
                     extra_args=["--cache-none", "--extra-model-paths-config", str(config)]) as srv:
        yield srv, root


class Graph:
    def __init__(self, api: dict):
        self.api = api

    def add(self, class_type: str, **inputs) -> str:
        key = str(max(int(k) for k in self.api if k.isdigit()) + 1)
        self.api[key] = {"class_type": class_type, "inputs": inputs}
        return key

    def copy_node(self, key: str, **inputs) -> str:
        node = copy.deepcopy(self.api[key])
        return self.add(node["class_type"], **{**node["inputs"], **inputs})


def ids(api: dict) -> dict:
    one = lambda t: nodes_of(api, t)[0]   # noqa: E731
    return {"ckpt": one("CheckpointLoaderSimple"), "travel": one("ADLightning_PromptTravel"),
            "negative": one("CLIPTextEncode"), "latent": one("EmptyLatentImage"),
            "apply": one("ADLightning_ApplyMotionModule"), "sampler": one("ADLightning_Sampler"),
            "context": one("ADLightning_ContextOptions")}


def build(root: Path) -> tuple[dict, dict]:
    api = small(load_api("t2v_prompt_travel"), 64, FRAMES)
    n = ids(api)
    for node in nodes_of(api, "ADLightning_DecodeFrames") + nodes_of(api, "SaveAnimatedWEBP") + \
            nodes_of(api, "SaveVideo") + nodes_of(api, "CreateVideo"):
        del api[node]
    api[n["travel"]]["inputs"]["schedule"] = SCHEDULE
    api[n["context"]]["inputs"].update(context_length=8, context_overlap=2, mode="whole UNet")   # windows the UNet sees
    api[n["negative"]]["inputs"]["text"] = NEGATIVE
    api[n["sampler"]]["inputs"].update(steps=2, seed=7)
    prefix, suffix = api[n["travel"]]["inputs"]["prefix"], api[n["travel"]]["inputs"]["suffix"]
    g = Graph(api)
    out = {}
    clip = [n["ckpt"], 1]
    base = g.copy_node(n["sampler"])   # an unrecorded copy for the other branches to copy
    # travel, cfg 1 and cfg 2 (negative a plain prompt), each with its own recorder
    for name, cfg in (("travel_cfg1", 1.0), ("travel_cfg2", 2.0)):
        rec = g.add("ADLTest_RecordUNetInputs", model=[n["apply"], 0], directory=str(root / name))
        sampler = n["sampler"] if name == "travel_cfg1" else g.copy_node(n["sampler"])
        api[sampler]["inputs"].update(model=[rec, 0], cfg=cfg)
        out[name] = add_save_latent(api, [sampler, 0], prefix=f"test/{name}")
    n["sampler"] = base
    g.add("ADLTest_SaveConditioning", conditioning=[n["travel"], 0], path=str(root / "travel.pt"))
    for name, text in (("first", FIRST), ("last", LAST)):
        ref = g.add("CLIPTextEncode", text=with_prefix_suffix(text, prefix, suffix), clip=clip)
        g.add("ADLTest_SaveConditioning", conditioning=[ref, 0], path=str(root / f"{name}.pt"))
    g.add("ADLTest_SaveConditioning", conditioning=[n["negative"], 0], path=str(root / "negative.pt"))
    # one keyframe vs plain CLIPTextEncode, in windows
    one = g.copy_node(n["travel"], schedule=f"0: {FIRST}", prefix="", suffix="")
    plain = g.add("CLIPTextEncode", text=FIRST, clip=clip)
    for name, positive in (("one_key", one), ("plain", plain)):
        out[name] = add_save_latent(api, [base if name == "plain" else g.copy_node(base, positive=[positive, 0]), 0],
                                    prefix=f"test/{name}")
    api[base]["inputs"]["positive"] = [plain, 0]
    # motion scale: inputs left out (every workflow before motion scale) vs explicit 1.0 (the plain branch above)
    apply_default = g.add("ADLightning_ApplyMotionModule", model=[n["ckpt"], 0],
                          motion_model=api[n["apply"]]["inputs"]["motion_model"])
    sampler = g.copy_node(n["sampler"], positive=[plain, 0], model=[apply_default, 0])
    out["scale_default"] = add_save_latent(api, [sampler, 0], prefix="test/scale_default")
    # independence at scale 0: 8 frames, no windows, frame 3's noise swapped for noise index 20
    latent8 = g.add("EmptyLatentImage", width=64, height=64, batch_size=8)
    for scale in (0.0, 1.0):
        apply = g.copy_node(n["apply"], motion_scale=scale)
        for tag, index in (("a", "0,1,2,3,4,5,6,7"), ("b", "0,1,2,20,4,5,6,7")):
            latent = g.add("ADLTest_SetBatchIndex", samples=[latent8, 0], batch_index=index)
            sampler = g.copy_node(n["sampler"], model=[apply, 0], positive=[plain, 0], latent_image=[latent, 0])
            del api[sampler]["inputs"]["context_options"]
            out[f"scale{scale:g}_{tag}"] = add_save_latent(api, [sampler, 0], prefix=f"test/scale{scale:g}{tag}")
    return api, out


@pytest.fixture(scope="module")
def run(travel_server):
    srv, root = travel_server
    api, saves = build(root)
    entry = srv.run(api, timeout=1800)
    latents = {name: saved_latent(srv, entry, node) for name, node in saves.items()}
    calls = {name: [torch.load(p) for p in sorted((root / name).glob("*.pt"))] for name in ("travel_cfg1", "travel_cfg2")}
    conds = {name: torch.load(root / f"{name}.pt") for name in ("travel", "first", "last", "negative")}
    return latents, calls, conds


def per_frame_rows(calls: list[dict], which: int):
    """(window, frame, row of c_crossattn) for every cond (which=0) or uncond (1) row the UNet got."""
    for call in calls:
        window = call["window"]
        parts = call["context"].chunk(len(call["cond_or_uncond"]))
        for part, kind in zip(parts, call["cond_or_uncond"]):
            if kind != which:
                continue
            assert part.shape[0] == len(window), "the UNet got another number of rows than the window has frames"
            for frame, row in zip(window, part):
                yield tuple(window), frame, row


@pytest.mark.parametrize("name", ["travel_cfg1", "travel_cfg2"])
def test_each_window_gets_its_own_frames_conditioning(run, name):
    _, recorded, conds = run
    calls = recorded[name]
    travel = conds["travel"][0][0]
    first, last = conds["first"][0][0][0], conds["last"][0][0][0]
    assert travel.shape[0] == FRAMES
    windows = {call["window"] and tuple(call["window"]) for call in calls}
    assert None not in windows and len(windows) >= 3, f"expected several context windows, got {windows}"
    rows = list(per_frame_rows(calls, 0))
    assert {frame for _, frame, _ in rows} == set(range(FRAMES))
    for window, frame, row in rows:
        assert torch.equal(row, travel[frame]), f"window {window}: frame {frame} got another frame's conditioning"
        if frame <= 4:       # before (and at) the first keyframe: the first prompt, exactly as CLIPTextEncode makes it
            assert torch.equal(row, first), (window, frame)
        if frame >= 14:      # at and after the last keyframe: the last prompt
            assert torch.equal(row, last), (window, frame)
        if 4 < frame < 14:   # in between: neither
            assert not torch.equal(row, first) and not torch.equal(row, last), (window, frame)


def test_cfg_above_one_keeps_the_single_negative_on_every_frame(run):
    _, calls, conds = run
    negative = conds["negative"][0][0][0]
    rows = list(per_frame_rows(calls["travel_cfg2"], 1))
    assert {frame for _, frame, _ in rows} == set(range(FRAMES))
    assert all(torch.equal(row, negative) for _, _, row in rows)
    assert not list(per_frame_rows(calls["travel_cfg1"], 1)), "cfg 1 ran an uncond pass"


def test_travel_latent_is_a_real_clip(run):
    latents, _, _ = run
    for name in ("travel_cfg1", "travel_cfg2"):
        assert latents[name].shape == (FRAMES, 4, 8, 8) and torch.isfinite(latents[name]).all()
    assert not torch.equal(latents["travel_cfg1"], latents["travel_cfg2"])


def test_one_keyframe_schedule_is_bit_identical_to_clip_text_encode(run):
    latents, _, _ = run
    assert torch.equal(latents["one_key"], latents["plain"])


def test_motion_scale_one_is_the_apply_node_without_motion_scale(run):
    latents, _, _ = run
    assert torch.equal(latents["scale_default"], latents["plain"])


def test_motion_scale_zero_makes_frames_independent(run):
    latents, _, _ = run
    a, b = latents["scale0_a"], latents["scale0_b"]
    changed = [not torch.equal(a[i], b[i]) for i in range(8)]
    assert changed == [False, False, False, True, False, False, False, False]
    # control: with the motion module at 1.0 the swapped noise of frame 3 reaches every frame
    a, b = latents["scale1_a"], latents["scale1_b"]
    assert all(not torch.equal(a[i], b[i]) for i in range(8))


def test_bad_schedule_is_refused_naming_the_line(travel_server):
    srv, _ = travel_server
    api = small(load_api("t2v_prompt_travel"), 64, 8)
    api[ids(api)["travel"]]["inputs"]["schedule"] = "0: a seed\n\n12 a sprout"
    with pytest.raises(PromptFailed, match=r"schedule line 3: '12 a sprout' is not 'frame: prompt'"):
        srv.queue(api)


def test_frame_count_other_than_the_latents_is_refused(travel_server):
    srv, _ = travel_server
    api = small(load_api("t2v_prompt_travel"), 64, 8)
    n = ids(api)
    del api[n["travel"]]["inputs"]["latent"]
    api[n["travel"]]["inputs"]["frames"] = 12
    with pytest.raises(PromptFailed, match="positive conditioning has 12 per-frame text embeddings but the latent "
                                           "has 8 frames"):
        srv.run(api)


def test_core_still_validates_the_inputs_the_pack_does_not(travel_server):
    """validate_inputs names only the inputs it checks, so core's combo and range checks still run for the others:
    an interpolation that is not an option and a motion scale above the maximum are refused when queued."""
    srv, _ = travel_server
    api = small(load_api("t2v_prompt_travel"), 64, 8)
    api[ids(api)["travel"]]["inputs"]["interpolation"] = "cubic"
    with pytest.raises(PromptFailed, match=r"interpolation.*cubic|cubic.*interpolation"):
        srv.queue(api)
    api = small(load_api("t2v_prompt_travel"), 64, 8)
    [apply] = nodes_of(api, "ADLightning_ApplyMotionModule")
    api[apply]["inputs"]["motion_scale"] = 5.0
    with pytest.raises(PromptFailed, match=r"motion_scale"):
        srv.queue(api)


def test_an_error_raised_by_the_pack_is_named_by_its_type(travel_server):
    """An execution error from the pack reaches the client as its short type name (ComfyUI prefixes a custom node's
    exception with the module, which for the pack is its folder path, unless the class says builtins)."""
    srv, _ = travel_server
    api = small(load_api("t2v_prompt_travel"), 64, 8)
    n = ids(api)
    del api[n["travel"]]["inputs"]["latent"]
    api[n["travel"]]["inputs"]["frames"] = 10
    with pytest.raises(PromptFailed) as failed:
        srv.run(api)
    [error] = [m[1] for m in failed.value.detail["status"]["messages"] if m[0] == "execution_error"]
    assert error["exception_type"] == "CondFramesError", error["exception_type"]
