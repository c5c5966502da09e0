"""Host tier: context windows inside the motion module (mode "motion module", the default) in a real ComfyUI
(random weights, 64 px).

  * The shipped t2v_long_64 (also without its mode input, as saved before it existed) runs in the default mode: the UNet runs once per
    step on all 64 frames (its progress bar counts 4 steps, not 23 windows), and its latent differs from the
    whole-UNet mode's. The seam metric of both is printed (random weights make nearly independent frames, so it is
    not compared here).
  * On dev/benchmarks/window_seams.py's video prior (a denoiser known in closed form) the seam metric of the default
    settings in the default mode is no worse than in the whole-UNet mode.
  * ControlNet: the UNet sees every frame, so core hands each frame its own hint frame: a changed hint at frames
    36-39 changes those frames most.
  * Prompt travel: per-frame conds apply directly; a one-keyframe schedule samples bit for bit what CLIPTextEncode
    of the same text does, and a real schedule samples something else.
  * Motion scale 0 skips the module on every frame: a changed noise in frames 0-7 changes no other frame.
"""
from __future__ import annotations

import argparse
import copy

import pytest
import torch

from adlightning.metrics.seams import seam_ratio
from adlightning.samplers import windows as win
from dev.harness.graphs import drop_saves
from dev.harness.listener import Listener, saved_latent
from tests.host.conftest import add_save_latent, load_api, nodes_of, small
from tests.host.test_controlnet_windows_host import FRAMES as CNET_FRAMES, graph as cnet_graph

WORKFLOW = "t2v_long_64"
STEPS = 4


def one(api: dict, class_type: str) -> str:
    return nodes_of(api, class_type)[0]


def add(api: dict, class_type: str, **inputs) -> str:
    key = str(max(int(k) for k in api if k.isdigit()) + 1)
    api[key] = {"class_type": class_type, "inputs": inputs}
    return key


def without_decode(api: dict) -> dict:
    for node in nodes_of(api, "ADLightning_DecodeFrames"):
        del api[node]
    drop_saves(api)
    return api


def test_the_shipped_workflow_runs_in_the_default_mode():
    api = load_api(WORKFLOW)
    assert api[one(api, "ADLightning_ContextOptions")]["inputs"]["mode"] == win.DEFAULT_MODE == win.MOTION_MODULE


@pytest.fixture(scope="module")
def long_64(server):
    """The shipped 64-frame workflow at 64 px (default mode) and, in the same prompt, a copy in whole-UNet mode. The
    mode input is left out, as in a workflow saved before it existed: that runs in the default mode."""
    api = without_decode(small(load_api(WORKFLOW), 64, 64))
    sampler, context = one(api, "ADLightning_Sampler"), one(api, "ADLightning_ContextOptions")
    del api[context]["inputs"]["mode"]
    api[sampler]["inputs"]["seed"] = 11
    unet_context = add(api, "ADLightning_ContextOptions", **{**api[context]["inputs"], "mode": win.WHOLE_UNET})
    unet_sampler = add(api, "ADLightning_Sampler", **{**api[sampler]["inputs"], "context_options": [unet_context, 0]})
    saves = {"module": add_save_latent(api, [sampler, 0], prefix="test/module64"),
             "unet": add_save_latent(api, [unet_sampler, 0], prefix="test/unet64")}
    with Listener(server) as listener:
        entry = server.wait(listener.queue(api), timeout=1800)
    return {name: saved_latent(server, entry, node) for name, node in saves.items()}, \
        {"module": listener.progress(sampler), "unet": listener.progress(unet_sampler)}


def test_64_frames_run_once_per_step_in_the_default_mode(long_64):
    latents, progress = long_64
    module, unet = latents["module"], latents["unet"]
    assert module.shape == unet.shape == (64, 4, 8, 8)
    assert torch.isfinite(module).all() and module.std() > 0.1
    assert not torch.equal(module, unet)
    assert {total for _, total in progress["module"]} == {STEPS}, progress["module"]
    assert {total for _, total in progress["unet"]} == {5 + 6 + 6 + 6}, progress["unet"]
    options = win.WindowOptions()
    layouts = [win.windows(64, options, step) for step in range(STEPS)]
    print(f"\nseam ratio on random weights: motion module {seam_ratio(module, layouts):.3f}, "
          f"whole UNet {seam_ratio(unet, layouts):.3f}")


def test_seams_on_the_video_prior_no_worse_than_whole_unet():
    from dev.benchmarks.window_seams import evaluate, prior_cov, sample, STEPS as PRIOR_STEPS
    from dev.harness.reference import sqrt_linear_sigmas
    from adlightning.samplers.schedules import sigmas_for
    frames = 64
    cov = prior_cov(frames, 0.5, 4.0)
    sigmas = sigmas_for("trailing", sqrt_linear_sigmas(), PRIOR_STEPS).double()
    gen = torch.Generator().manual_seed(0)
    noises = [torch.randn(frames, 1024, generator=gen, dtype=torch.float64)]
    full = [sample(n, sigmas, cov, None) for n in noises]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        unet = evaluate(win.WindowOptions(), noises, full, cov, sigmas, False)
        module = evaluate(win.WindowOptions(), noises, full, cov, sigmas, False, granularity="attention")
    finally:
        torch.set_num_threads(threads)
    print(f"\nprior: seam {module['seam']:.3f} (module) vs {unet['seam']:.3f} (whole UNet); "
          f"peak {module['peak']:.3f} vs {unet['peak']:.3f}")
    assert module["seam"] <= unet["seam"] and module["peak"] <= unet["peak"]


def cnet_sample(server, **changes) -> torch.Tensor:
    api, save = cnet_graph(**changes)
    api[one(api, "ADLightning_ContextOptions")]["inputs"]["mode"] = win.MOTION_MODULE
    return saved_latent(server, server.run(api), save)


def test_controlnet_hint_frames_reach_their_own_frames(server):
    base = cnet_sample(server)
    end = cnet_sample(server, changed_first=range(36, 40))
    start = cnet_sample(server, changed_second=range(0, 4))
    assert base.shape[0] == CNET_FRAMES and torch.isfinite(base).all()
    for out, frames in ((end, range(36, 40)), (start, range(0, 4))):
        change = (out - base).abs().flatten(1).amax(dim=1)
        print("\nper-frame max |change|:", [f"{v:.1e}" for v in change.tolist()])
        assert int(change.argmax()) in frames, change
        assert (change[list(frames)] > 0).all()


@pytest.fixture(scope="module")
def travel(server):
    api = without_decode(small(load_api("t2v_prompt_travel"), 64, 20))
    travel_node, sampler = one(api, "ADLightning_PromptTravel"), one(api, "ADLightning_Sampler")
    api[travel_node]["inputs"].update(schedule="0: a red ball\n10: a blue cube\n100%: a green cone", frames=20)
    api[one(api, "ADLightning_ContextOptions")]["inputs"].update(context_length=8, context_overlap=2,
                                                                 mode=win.MOTION_MODULE)
    api[sampler]["inputs"].update(steps=2, seed=5)
    clip = api[travel_node]["inputs"]["clip"]
    single = add(api, "ADLightning_PromptTravel",
                 **{**api[travel_node]["inputs"], "schedule": "0: a red ball", "prefix": "", "suffix": ""})
    plain = add(api, "CLIPTextEncode", text="a red ball", clip=clip)
    saves = {"travel": add_save_latent(api, [sampler, 0], prefix="test/mw_travel")}
    for name, positive in (("single", single), ("plain", plain)):
        branch = add(api, "ADLightning_Sampler", **{**api[sampler]["inputs"], "positive": [positive, 0]})
        saves[name] = add_save_latent(api, [branch, 0], prefix=f"test/mw_{name}")
    entry = server.run(api, timeout=1800)
    return {name: saved_latent(server, entry, node) for name, node in saves.items()}


def test_prompt_travel_runs_in_the_motion_module_mode(travel):
    assert travel["travel"].shape == (20, 4, 8, 8) and torch.isfinite(travel["travel"]).all()
    assert torch.equal(travel["single"], travel["plain"])
    assert not torch.equal(travel["travel"], travel["plain"])


def noise_pair(api: dict, empty: str, sampler: dict, model: list, tag: str):
    """Two samplers: noise draws 0-19, and the same with frames 0-7 given draws 40-47."""
    def from_batch(start, length):
        return [add(api, "LatentFromBatch", samples=[empty, 0], batch_index=start, length=length), 0]
    base = from_batch(0, 20)
    changed = [add(api, "LatentBatch", samples1=from_batch(40, 8), samples2=from_batch(8, 12)), 0]
    return [add_save_latent(api, [add(api, "ADLightning_Sampler", **{**sampler, "model": model,
                                                                      "latent_image": latent}), 0],
                            prefix=f"test/mw_scale{tag}") for latent in (base, changed)]


def test_motion_scale_zero_keeps_frames_independent(server):
    api = without_decode(small(load_api(WORKFLOW), 64, 64))
    sampler_key, apply = one(api, "ADLightning_Sampler"), one(api, "ADLightning_ApplyMotionModule")
    api[one(api, "ADLightning_ContextOptions")]["inputs"].update(context_length=8, context_overlap=2,
                                                                 schedule="static")
    sampler = api.pop(sampler_key)["inputs"]
    empty = one(api, "EmptyLatentImage")
    saves = {}
    for scale in (0.0, 1.0):
        scaled = add(api, "ADLightning_ApplyMotionModule", **{**api[apply]["inputs"], "motion_scale": scale})
        saves[scale] = noise_pair(api, empty, sampler, [scaled, 0], f"{scale:g}")
    entry = server.run(api, timeout=1800)
    out = {scale: [saved_latent(server, entry, s) for s in pair] for scale, pair in saves.items()}
    for scale, (a, b) in out.items():
        changed = [i for i in range(20) if not torch.equal(a[i], b[i])]
        print(f"\nmotion scale {scale:g}: frames changed {changed}")
        if scale == 0.0:
            assert changed == list(range(8))
        else:
            assert set(changed) > set(range(8))


def test_all_frames_that_would_not_fit_run_in_whole_unet_windows(monkeypatch):
    """In-process, on ComfyUI's SD1.5 model built on the meta device: with free memory above 1.5x ComfyUI's estimate
    for one UNet call on every frame (cond and uncond at cfg 2) the sampler's model gets the module windows; below it,
    core's context handler (whole-UNet windows, one window's memory)."""
    import importlib
    from tests.host.conftest import import_comfy_in_process
    import_comfy_in_process()
    import comfy.model_detection
    import comfy.model_patcher
    from dev.harness.make_sd15 import SD15_UNET
    handler = importlib.import_module("adlightning.nodes.context_handler")
    patch = importlib.import_module("adlightning.nodes.motion_patch")
    config = comfy.model_detection.model_config_from_unet_config(dict(SD15_UNET))
    cpu = torch.device("cpu")
    patcher = comfy.model_patcher.ModelPatcher(config.get_model({}, device=torch.device("meta")), load_device=cpu,
                                               offload_device=cpu)
    noise = torch.zeros(64, 4, 8, 8)
    need = handler.cc.unet_memory_required(patcher, [128, 4, 8, 8])
    for free, module_windows in ((int(need * 1.6), True), (int(need * 1.4), False)):
        monkeypatch.setattr(handler.cc, "free_memory", lambda model, free=free: free)
        model, _, _ = handler.apply(patcher, win.WindowOptions(), noise, 0, STEPS, 2.0)
        assert (patch.WINDOWS_KEY in model.model_options["transformer_options"]) == module_windows
        assert ("context_handler" in model.model_options) != module_windows
