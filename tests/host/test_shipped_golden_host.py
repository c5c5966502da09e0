"""Host tier: every shipped text-to-video workflow's sampled latent is what a fixed version of the pack made on ComfyUI
0.14.1 (seeded, 64 px, random weights): tests/fixtures/shipped_latents.json holds the SHA-256 of each raw latent and
tests/fixtures/shipped_latents.safetensors the latents themselves. On the machine the golden was made on the check is
bit for bit; CPU kernels differ in the last bits between machines (the same pack and ComfyUI gave other hashes on
another machine), so elsewhere a latent passes within float rounding (max abs difference <= TOLERANCE, printed). A
change that is not meant to move the numbers (a refactor, a new opt-in feature) keeps them all.

The golden is made from the pack at a given commit: check it out somewhere and run this file with
ADL_GOLDEN_PACK=<that folder> ADL_UPDATE_GOLDEN=1 on ComfyUI 0.14.1 (the test then serves that pack and rewrites the
fixtures); a change that is meant to move a workflow's numbers rewrites them from the change itself and says so. On
other ComfyUI versions the test is skipped (core's sampling may differ; the cross-version test compares within a
tolerance).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import drop_saves
from dev.harness.listener import saved_latent
from tests.host.conftest import REPO, add_save_latent, comfy_path, load_api, model_files, nodes_of, small
from tests.host.test_cross_version_host import comfy_version

GOLDEN = REPO / "tests" / "fixtures" / "shipped_latents.json"
VALUES = GOLDEN.with_suffix(".safetensors")
TOLERANCE = 1e-3   # latents are O(1); a real change (another window mode, a schedule) moves them by O(0.1) or more
FRAMES = 8   # windowed workflows keep their own frame count
SEED = 20261206
# The workflows whose whole input is the graph (v2v needs a source clip, i2v a picture: their own host tests).
NAMES = sorted(p.stem for p in (REPO / "workflows" / "api").glob("*.json")
               if not any(n["class_type"] in ("LoadVideo", "LoadImage")
                          for n in json.loads(p.read_text()).values()))


def graph(name: str) -> tuple[dict, list[str]]:
    """The workflow at test size with a SaveLatent after each Lightning sampler, nothing decoded or saved."""
    api = load_api(name)
    windowed = any("Context" in n["class_type"] for n in api.values())
    api = small(api, 64, None if windowed else FRAMES)
    for node in [k for k, n in api.items()
                 if n["class_type"] in ("VAEDecode", "ADLightning_DecodeFrames", "ADLightning_UpscaleFrames")]:
        del api[node]
    drop_saves(api)
    saves = []
    for i, sampler in enumerate(sorted(nodes_of(api, "ADLightning_Sampler"), key=int)):
        api[sampler]["inputs"]["seed"] = SEED + i
        saves.append(add_save_latent(api, [sampler, 0], prefix=f"test/golden_{name}_{i}"))
    return api, saves


def sha(latent: torch.Tensor) -> str:
    return hashlib.sha256(latent.float().contiguous().numpy().tobytes()).hexdigest()


@pytest.fixture(scope="module")
def golden_server(request):
    """The session server, or one serving the pack in ADL_GOLDEN_PACK when the golden is being made from it."""
    pack = os.environ.get("ADL_GOLDEN_PACK")
    if not pack:
        yield request.getfixturevalue("server")
        return
    with ComfyServer(comfy_path(), model_files(), extra_args=["--cache-none"], pack=Path(pack)) as srv:
        yield srv


def test_shipped_workflows_give_the_golden_latents(golden_server):
    version = comfy_version()
    if version != "0.14.1":
        pytest.skip(f"the golden is bit-exact on ComfyUI 0.14.1; this is {version}")
    updating = os.environ.get("ADL_UPDATE_GOLDEN") == "1"
    golden = None if updating else json.loads(GOLDEN.read_text())
    got, latents = {}, {}
    for name in NAMES if updating else sorted(golden["latents"]):
        api, saves = graph(name)
        entry = golden_server.run(api, timeout=1800)
        found = [saved_latent(golden_server, entry, save).float().contiguous() for save in saves]
        got[name] = [sha(latent) for latent in found]
        latents.update({f"{name}/{i}": latent for i, latent in enumerate(found)})
    if updating:
        pack = Path(os.environ.get("ADL_GOLDEN_PACK") or REPO)
        commit = subprocess.run(["git", "-C", str(pack), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        GOLDEN.write_text(json.dumps({"comfyui": version, "pack": commit, "seed": SEED, "frames": FRAMES,
                                      "latents": got}, indent=1) + "\n")
        save_file(latents, str(VALUES))
        pytest.skip(f"golden rewritten from the pack at {commit} on ComfyUI {version}")
    values = load_file(str(VALUES))
    differ, rounding = {}, {}
    for name, hashes in golden["latents"].items():
        if got[name] == hashes:
            continue
        worst = max((latents[f"{name}/{i}"] - values[f"{name}/{i}"]).abs().max().item() for i in range(len(hashes)))
        (rounding if worst <= TOLERANCE else differ)[name] = worst
    if rounding:
        print(f"not bit for bit on this machine, within float rounding (max abs difference): {rounding}")
    assert not differ, f"latents differ from the golden made by the pack at {golden['pack']} (max abs difference): " \
                       f"{differ}"
