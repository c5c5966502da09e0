"""The shipped text-to-video workflow inside real ComfyUI 0.14.1, with random full-size weights.

Random weights make no smooth video, so these tests check what they can check exactly: the graph runs, frames come
out, the motion module couples frames (and only then), the input MODEL stays untouched, and runs are deterministic.
"""
import copy
import json
import os
import subprocess
import sys

import pytest
import torch

from dev.harness.comfy_server import PACK_DIR_NAME, ComfyServer, PromptFailed
from dev.harness.graphs import read_video, sampler_id, without_motion
from tests.host.conftest import (REPO, add_save_latent, comfy_path, load_api, model_files, nodes_of, read_latents,
                                 small)

FRAMES = 16


def t2v(seed=0, frames=FRAMES):
    api = small(load_api("t2v_lightning"), 64, frames)
    api[nodes_of(api, "ADLightning_Sampler")[0]]["inputs"]["seed"] = seed
    return api


def latents_of(server, api):
    api = copy.deepcopy(api)
    add_save_latent(api, [sampler_id(api), 0])
    return read_latents(server, server.run(api))[0]


def with_frame_noise(api, first_frame_draw: int):
    """Frame 0 takes noise draw `first_frame_draw`, frames 1..15 draws 1..15 (ComfyUI's batch_index)."""
    api = copy.deepcopy(api)
    empty = nodes_of(api, "EmptyLatentImage")[0]
    big = dict(api[empty], inputs={**api[empty]["inputs"], "batch_size": 64})
    api.update({
        "100": big,
        "101": {"class_type": "LatentFromBatch", "inputs": {"samples": ["100", 0], "batch_index": first_frame_draw,
                                                             "length": 1}},
        "102": {"class_type": "LatentFromBatch", "inputs": {"samples": [empty, 0], "batch_index": 1,
                                                             "length": FRAMES - 1}},
        "103": {"class_type": "LatentBatch", "inputs": {"samples1": ["101", 0], "samples2": ["102", 0]}},
    })
    api[sampler_id(api)]["inputs"]["latent_image"] = ["103", 0]
    return api


def test_every_node_is_listed_with_tooltips(server):
    info = server.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("ADLightning_")}
    assert {"ADLightning_LoadMotionModule", "ADLightning_ApplyMotionModule", "ADLightning_Sampler",
            "ADLightning_Schedule"} <= set(ours)
    for name, node in ours.items():
        assert node["python_module"].startswith("custom_nodes."), name
        for section in ("required", "optional"):
            for input_name, spec in node["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
    assert "animatediff_lightning_4step_comfyui.safetensors" in \
        ours["ADLightning_LoadMotionModule"]["input"]["required"]["model_name"][1]["options"]
    ours_line = [line for line in server.log().splitlines() if line.rstrip().endswith(PACK_DIR_NAME)]
    assert ours_line and "IMPORT FAILED" not in ours_line[0], ours_line


def test_shipped_t2v_workflow_makes_16_frames(server):
    api = t2v(seed=1)
    add_save_latent(api, [sampler_id(api), 0])
    answer = server.queue(api)
    assert answer["node_errors"] == {}
    entry = server.wait(answer["prompt_id"])
    (video,) = server.output_files(entry)
    frames, fps = read_video(video)
    assert video.suffix == ".mp4" and frames.shape == (FRAMES, 64, 64, 3)
    assert fps == api[nodes_of(api, "CreateVideo")[0]]["inputs"]["fps"]
    latent = read_latents(server, entry)[0]
    assert latent.shape == (FRAMES, 4, 8, 8) and torch.isfinite(latent).all()
    assert "Lightning 4-step" in server.log()


def test_motion_module_couples_frames_and_only_it_does(server):
    api = t2v(seed=2)
    base, moved = latents_of(server, with_frame_noise(api, 0)), latents_of(server, with_frame_noise(api, 63))
    frame_change = (base - moved).abs().flatten(1).amax(1)
    assert frame_change[0] > 0
    assert (frame_change[1:] > 1e-3).all(), f"frames 1..15 ignored frame 0's noise: {frame_change.tolist()}"

    plain_base = latents_of(server, without_motion(with_frame_noise(api, 0)))
    plain_moved = latents_of(server, without_motion(with_frame_noise(api, 63)))
    assert torch.equal(plain_base[1:], plain_moved[1:]), "without the motion module frames must be independent"
    assert not torch.allclose(plain_base, base), "the motion module changed nothing"


def test_same_seed_same_clip(server):
    a, b = latents_of(server, t2v(seed=3)), latents_of(server, t2v(seed=3))
    assert torch.equal(a, b)
    assert not torch.equal(a, latents_of(server, t2v(seed=4)))


def test_diffusers_release_gives_the_same_clip(server):
    api = t2v(seed=5)
    a = latents_of(server, api)
    api[nodes_of(api, "ADLightning_LoadMotionModule")[0]]["inputs"]["model_name"] = \
        "animatediff_lightning_4step_diffusers.safetensors"
    assert torch.equal(a, latents_of(server, api))


def test_cfg_above_one_uses_the_negative_prompt(server):
    api = t2v(seed=6, frames=8)
    api[sampler_id(api)]["inputs"]["cfg"] = 2.0
    a = latents_of(server, api)
    api[nodes_of(api, "CLIPTextEncode")[1]]["inputs"]["text"] = "a completely different negative"
    b = latents_of(server, api)
    assert a.shape[0] == 8 and not torch.equal(a, b)


def test_too_many_frames_without_windows_is_a_clear_error(server):
    with pytest.raises(PromptFailed) as err:
        server.run(t2v(seed=7, frames=40))
    text = json.dumps(err.value.detail)
    assert "40 frames requested" in text and "context windows" in text and "32" in text


def plain_sd15(seed):
    """The same checkpoint and prompt through core KSampler only: no node of this pack."""
    api = without_motion(t2v(seed=seed, frames=4))
    sampler = sampler_id(api)
    inputs = api[sampler]["inputs"]
    api[sampler] = {"class_type": "KSampler", "inputs": {
        "model": inputs["model"], "positive": inputs["positive"], "negative": inputs["negative"],
        "latent_image": inputs["latent_image"], "seed": seed, "steps": 4, "cfg": 1.0, "sampler_name": "euler",
        "scheduler": "simple", "denoise": 1.0}}
    return api


def test_input_model_is_untouched_by_a_lightning_run(server):
    """Plain SD1.5 after a Lightning run equals plain SD1.5 on a server that never saw the motion module."""
    server.post("/free", {"unload_models": True, "free_memory": True})
    with ComfyServer(comfy_path(), model_files(), extra_args=["--cache-none"]) as fresh:
        before = latents_of(fresh, plain_sd15(seed=8))
        lightning = latents_of(fresh, t2v(seed=8, frames=4))
        after = latents_of(fresh, plain_sd15(seed=8))
    assert torch.equal(before, after)
    assert not torch.equal(before, lightning)


SIGMA_CHECK = """
import json, sys, torch
from comfy.cli_args import args
args.cpu = True
import comfy.samplers, comfy.model_sampling
from types import SimpleNamespace
sys.path.insert(0, sys.argv[1])
from dev.harness.reference import sqrt_linear_sigmas
from adlightning.samplers.schedules import sgm_uniform, trailing
class MS(comfy.model_sampling.EPS, comfy.model_sampling.ModelSamplingDiscrete):
    pass
ms = MS(SimpleNamespace(sampling_settings={"beta_schedule": "sqrt_linear"}))
table = sqrt_linear_sigmas()
out = {"table": (ms.sigmas - table).abs().max().item()}
for n in (1, 2, 4, 8):
    out[f"sgm{n}"] = (comfy.samplers.calculate_sigmas(ms, "sgm_uniform", n) - sgm_uniform(table, n)).abs().max().item()
    out[f"simple{n}"] = (comfy.samplers.calculate_sigmas(ms, "simple", n) - trailing(table, n)).abs().max().item()
print(json.dumps(out))
"""


def test_schedules_agree_with_comfyui_core():
    """Our pure-torch table, trailing and sgm_uniform against ComfyUI's sqrt_linear model_sampling and schedulers."""
    out = subprocess.run([sys.executable, "-c", SIGMA_CHECK, str(REPO)], cwd=comfy_path(), check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": comfy_path()})
    diffs = json.loads(out.stdout.strip().splitlines()[-1])
    assert diffs["table"] == 0.0
    assert all(v < 1e-5 for v in diffs.values()), diffs
