"""Host tier: context windows in a real ComfyUI (random weights, 64 px).

One 16-frame and one 64-frame run of the shipped 64-frame workflow serve several tests (a run is minutes on CPU):
no node_errors, a progress bar counted in windows, and peak RSS of sampling + decoding 64 frames within 1.3x of
16 frames (the UNet and motion module only ever see one 16-frame window). A second graph shows the windows really are
separate and really are blended: a change of noise in one window reaches the next window only through the overlap.
"""
from __future__ import annotations

import copy
import json
import time

import pytest
import torch

from dev.harness.comfy_server import ComfyServer, PromptFailed
from tests.host.conftest import add_save_latent, comfy_path, load_api, model_files, nodes_of, small
from dev.harness.graphs import drop_saves
from dev.harness.listener import Listener, saved_latent

WORKFLOW = "t2v_long_64"
STEPS = 4
WINDOWS_64 = 5 + 6 + 6 + 6


def whole_unet(api: dict) -> dict:
    """These tests are about the whole-UNet mode (the UNet runs per window); the windows inside the motion module,
    the default, are tests/host/test_motion_windows_host.py's."""
    api[context_id(api)]["inputs"]["mode"] = "whole UNet"
    return api


def sampler_id(api: dict) -> str:
    return nodes_of(api, "ADLightning_Sampler")[0]


def context_id(api: dict) -> str:
    return nodes_of(api, "ADLightning_ContextOptions")[0]


def run_measured(server, frames: int, seed: int) -> dict:
    api = whole_unet(small(load_api(WORKFLOW), 64, frames))
    api[sampler_id(api)]["inputs"]["seed"] = seed   # a new seed, so a caching server samples and decodes again
    save = add_save_latent(api, [sampler_id(api), 0], prefix=f"test/windows{frames}")
    with Listener(server) as listener:
        server.reset_peak_rss()
        entry = server.wait(listener.queue(api))
        peak = server.peak_rss_bytes()
    return {"api": api, "entry": entry, "latent": saved_latent(server, entry, save),
            "peak": peak, "progress": listener.progress(sampler_id(api))}


@pytest.fixture(scope="module")
def runs(server):
    """A 16- and a 64-frame run in a fresh caching server whose models a warm-up run already loaded, so the peaks
    belong to sampling and decoding; with the loads in them both peaks would be the checkpoint load's."""
    server.post("/free", {"unload_models": True, "free_memory": True})   # the session server waits meanwhile
    with ComfyServer(comfy_path(), model_files()) as srv:
        srv.run(whole_unet(small(load_api(WORKFLOW), 64, 16)))
        return {frames: run_measured(srv, frames, seed=1 + i) for i, frames in enumerate((16, 64))}


def test_64_frames_run_in_windows(runs):
    latent = runs[64]["latent"]
    assert latent.shape == (64, 4, 8, 8)
    assert torch.isfinite(latent).all()
    assert latent.std() > 0.1
    assert runs[64]["entry"]["outputs"], "the workflow saved nothing"


def test_progress_bar_moves_per_window(runs):
    # 64 frames, uniform schedule, length 16, overlap 4: 5, 6, 6 and 6 windows in the 4 steps.
    progress = runs[64]["progress"]
    assert {total for _, total in progress} == {WINDOWS_64}
    values = [value for value, _ in progress]
    assert values == sorted(values) and values[-1] == WINDOWS_64
    assert len(set(values)) > STEPS + 1, f"progress only moved per step: {values}"
    # 16 frames fit one window: one unit per step.
    assert {total for _, total in runs[16]["progress"]} == {STEPS}


def test_peak_rss_64_frames_within_1_3x_of_16(runs):
    peak16, peak64 = runs[16]["peak"], runs[64]["peak"]
    print(f"\nsampling + decoding peak RSS: 16 frames {peak16 / 2**30:.2f} GiB, 64 frames {peak64 / 2**30:.2f} GiB, "
          f"ratio {peak64 / peak16:.3f}")
    assert peak64 <= 1.3 * peak16


def noise_graph(overlap: int) -> tuple[dict, list[str]]:
    """32 frames sampled twice: once with noise draws 0-31, once with frames 0-7 given draws 40-47 instead. The
    batch_index lists (LatentFromBatch/LatentBatch) make prepare_noise give frame k draw batch_index[k]."""
    api = whole_unet(small(load_api(WORKFLOW), 64, 64))
    api[context_id(api)]["inputs"].update(context_overlap=overlap, schedule="static")
    empty = nodes_of(api, "EmptyLatentImage")[0]
    sampler = api.pop(sampler_id(api))
    for node in nodes_of(api, "ADLightning_DecodeFrames"):
        del api[node]
    drop_saves(api)

    def from_batch(key, start, length):
        api[key] = {"class_type": "LatentFromBatch",
                    "inputs": {"samples": [empty, 0], "batch_index": start, "length": length}}
        return [key, 0]

    base = from_batch("100", 0, 32)
    changed_head = from_batch("101", 40, 8)
    same_tail = from_batch("102", 8, 24)
    api["103"] = {"class_type": "LatentBatch", "inputs": {"samples1": changed_head, "samples2": same_tail}}
    saves = []
    for key, latent in (("110", base), ("120", ["103", 0])):   # add_save_latent takes the next id after each
        api[key] = copy.deepcopy(sampler)
        api[key]["inputs"]["latent_image"] = latent
        saves.append(add_save_latent(api, [key, 0], prefix=f"test/noise{overlap}_{key}"))
    return api, saves


def sample_pair(server, overlap: int):
    api, saves = noise_graph(overlap)
    entry = server.run(api)
    return [saved_latent(server, entry, s) for s in saves]


def test_windows_without_overlap_are_separate_clips(server):
    # Overlap 0: windows 0-15 and 16-31. A new noise for frames 0-7 leaves frames 16-31 bit for bit the same, so
    # the motion module did not see all 32 frames at once (which its 32-frame position table would allow).
    base, changed = sample_pair(server, overlap=0)
    assert base.shape == changed.shape == (32, 4, 8, 8)
    assert not torch.equal(base[:8], changed[:8])
    assert torch.equal(base[16:], changed[16:])


def test_noise_change_reaches_the_next_window_through_the_overlap(server):
    # Overlap 4: windows 0-15, 8-23, 16-31. Frames 0-7 are only in the first window, yet the change reaches
    # frames 16-31, which the first window never holds: blended into 8-15, then carried on by the next window's
    # motion module at the next step. Measured (latents ~1e2): frames 8-15 change by ~1, 16-23 by ~1e-3, 24-31 by
    # ~5e-5 -- random weights give the motion module a tiny cross-frame share; without blending the change past
    # the first window is exactly zero, as above.
    base, changed = sample_pair(server, overlap=4)
    diff = (base - changed).abs().flatten(1).max(dim=1).values
    print("\nper-frame max |change|:", [f"{v:.1e}" for v in diff.tolist()])
    assert (diff[:16] > 0.1).all(), diff[:16]
    assert (diff[16:24] > 1e-4).all(), diff[16:24]
    assert (diff[24:] > 0).all(), diff[24:]


def test_overlap_not_below_length_is_a_node_error(server):
    api = small(load_api(WORKFLOW), 64, 64)
    api[context_id(api)]["inputs"]["context_overlap"] = 16
    with pytest.raises(PromptFailed) as failed:
        server.queue(api)
    text = json.dumps(failed.value.detail)
    assert "context overlap 16 must be smaller than the context length 16" in text
    errors = failed.value.detail["node_errors"][context_id(api)]["errors"]
    assert {e["extra_info"]["input_name"] for e in errors} == {"context_length", "context_overlap"}, errors


def test_cancel_stops_between_windows(server):
    api = whole_unet(small(load_api(WORKFLOW), 64, 64))
    node = sampler_id(api)
    with Listener(server) as listener:
        prompt_id = listener.queue(api)
        deadline = time.time() + 600
        while not listener.progress(node) and time.time() < deadline:
            time.sleep(0.2)
        assert listener.progress(node), "the sampler never reported a window"
        server.post("/interrupt", {})
        with pytest.raises(PromptFailed):
            server.wait(prompt_id)
        time.sleep(1)
    assert any(m.get("type") == "execution_interrupted" for m in listener.messages)
    done = max(value for value, _ in listener.progress(node))
    assert done <= 2, f"{done} of {WINDOWS_64} windows ran after Cancel"


def run_error(server, api: dict) -> str:
    with pytest.raises(PromptFailed) as failed:
        server.run(api)
    return json.dumps(failed.value.detail)


def test_frames_past_the_position_table_without_windows_are_refused(server):
    api = small(load_api(WORKFLOW), 64, 40)
    del api[sampler_id(api)]["inputs"]["context_options"]
    text = run_error(server, api)
    assert "40 frames requested, but 'animatediff_lightning_4step_comfyui.safetensors' only has positions for 32" \
        in text
    assert "Attach context windows to the sampler" in text
    assert '"exception_type": "MotionModuleError"' in text   # the error's own name, not the pack's folder path


def test_context_length_past_the_position_table_is_refused(server):
    api = small(load_api(WORKFLOW), 64, 40)
    api[context_id(api)]["inputs"]["context_length"] = 33
    text = run_error(server, api)
    assert "context length 33 is longer than the position table of " \
           "'animatediff_lightning_4step_comfyui.safetensors' (32 frames); set the context length to 16" in text
