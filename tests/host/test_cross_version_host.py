"""Host tier: the same seed and settings give the same windowed latent on every ComfyUI the pack supports.

One run of the shipped 64-frame workflow at 64 px, cut to 48 frames in 32-frame windows (overlap 8, static: windows
0-31 and 16-47), the case that sent 33 frames into the 32-frame position table when core's causal window fix was on.
Its saved latent is compared with tests/fixtures/cross_version_latent.json, made on ComfyUI 0.14.1 from the seeded
random-weight fixtures (dev/harness/): per-frame mean and RMS, and the SHA-256 of the raw tensor (reported; equal on
this machine's CPU). ADL_UPDATE_GOLDEN=1 rewrites the fixture from the tree under test (do that on 0.14.1 only, and
only when a change is meant to move the numbers).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import torch

from dev.harness.graphs import drop_saves
from dev.harness.listener import saved_latent
from tests.host.conftest import REPO, add_save_latent, comfy_path, load_api, nodes_of, small

GOLDEN = REPO / "tests" / "fixtures" / "cross_version_latent.json"
FRAMES, LENGTH, OVERLAP, SEED = 48, 32, 8, 7
RTOL = 1e-4   # per-frame statistics; float sums over another CPU's kernels may differ in the last bits


def comfy_version() -> str:
    text = (Path(comfy_path()) / "comfyui_version.py").read_text()
    return re.search(r"__version__\s*=\s*['\"]([^'\"]+)", text).group(1)


def graph() -> tuple[dict, str]:
    api = small(load_api("t2v_long_64"), 64, FRAMES)
    sampler = nodes_of(api, "ADLightning_Sampler")[0]
    api[sampler]["inputs"]["seed"] = SEED
    context = nodes_of(api, "ADLightning_ContextOptions")[0]
    api[context]["inputs"].update(context_length=LENGTH, context_overlap=OVERLAP, schedule="static",
                                  mode="whole UNet")   # the golden latent was made in this mode
    # The latent is what is compared; decoding 48 frames and saving the clip on CPU would only cost time.
    for node in nodes_of(api, "ADLightning_DecodeFrames"):
        del api[node]
    drop_saves(api)
    return api, add_save_latent(api, [sampler, 0], prefix="test/cross_version")


def summary(latent: torch.Tensor) -> dict:
    latent = latent.float().contiguous()
    return {"shape": list(latent.shape),
            "sha256": hashlib.sha256(latent.numpy().tobytes()).hexdigest(),
            "frame_mean": latent.flatten(1).mean(1).tolist(),
            "frame_rms": latent.flatten(1).pow(2).mean(1).sqrt().tolist()}


def test_48_frames_in_32_frame_windows_match_the_golden_latent(server):
    api, save = graph()
    latent = saved_latent(server, server.run(api), save)
    got = summary(latent)
    version = comfy_version()
    if os.environ.get("ADL_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps({"comfyui": version, "frames": FRAMES, "context_length": LENGTH,
                                      "context_overlap": OVERLAP, "seed": SEED, **got}, indent=1) + "\n")
        pytest.skip(f"golden latent rewritten from ComfyUI {version}")
    if not GOLDEN.is_file():
        pytest.skip(f"{GOLDEN.relative_to(REPO)} not made yet: run this test once on ComfyUI 0.14.1 with "
                    "ADL_UPDATE_GOLDEN=1, commit the file, then run it on every other tree")
    golden = json.loads(GOLDEN.read_text())
    assert got["shape"] == golden["shape"] == [FRAMES, 4, 8, 8]
    exact = got["sha256"] == golden["sha256"]
    mean_err = max(abs(a - b) for a, b in zip(got["frame_mean"], golden["frame_mean"]))
    rms_rel = max(abs(a - b) / b for a, b in zip(got["frame_rms"], golden["frame_rms"]))
    print(f"\nComfyUI {version} vs golden from {golden['comfyui']}: bit-identical {exact}, "
          f"max per-frame |mean diff| {mean_err:.2e}, max per-frame RMS rel. diff {rms_rel:.2e}")
    scale = max(golden["frame_rms"])
    assert mean_err <= RTOL * scale and rms_rel <= RTOL, \
        "the windowed latent differs from the golden: core cuts windows differently (causal window fix?) or the " \
        "numbers moved"
