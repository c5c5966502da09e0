"""Host tier: tests that run the shipped workflows inside a real ComfyUI (COMFYUI_PATH).

Without COMFYUI_PATH every test here is skipped with that reason (pytest -rs prints it). One ComfyUI server serves the
whole session; it runs with --cache-none so an identical prompt is really executed again (determinism, isolation).
Fixture model files are random-weight, full-size, made once and cached outside the repo (see tests/fixtures).
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch

from tests.fixtures.motion_files import cache_dir, cached_file, cached_motion_lora
from tests.fixtures.upscale_files import cached_upscale_file
from tests.host.comfy_server import REPO, ComfyServer
from workflows.client import apply_overrides

CHECKPOINT_NAME = "v1-5-pruned-emaonly-fp16.safetensors"   # the name the shipped workflows use
LIGHTNING_NAME = "animatediff_lightning_4step_comfyui.safetensors"


def comfy_path() -> str:
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("COMFYUI_PATH is not set: host tier (real ComfyUI) not run. See README, 'Testing'.")
    if not (Path(path) / "main.py").is_file():
        pytest.fail(f"COMFYUI_PATH={path} has no main.py; point it at a ComfyUI checkout")
    return path


def sd15_checkpoint() -> Path:
    path = cache_dir() / "checkpoints" / "random_sd15.safetensors"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(REPO / "tests" / "host" / "make_sd15.py"), str(path)], check=True,
                       cwd=comfy_path(), env={**os.environ, "PYTHONPATH": comfy_path()})
    return path


def model_files() -> dict[str, dict[str, Path]]:
    """Every model file any host test needs, under the names the shipped workflows use."""
    return {
        "checkpoints": {CHECKPOINT_NAME: sd15_checkpoint()},
        "animatediff_models": {
            LIGHTNING_NAME: cached_file("v2", LIGHTNING_NAME),
            "animatediff_lightning_4step_diffusers.safetensors":
                cached_file("diffusers", "animatediff_lightning_4step_diffusers.safetensors"),
            # The browser check switches the loader to the 8-step name (steps follow the file name); same weights.
            "animatediff_lightning_8step_comfyui.safetensors": cached_file("v2", LIGHTNING_NAME),
        },
        "animatediff_motion_lora": {"v2_lora_ZoomIn.ckpt": cached_motion_lora()},
        "upscale_models": {name: cached_upscale_file(name) for name in (
            "RealESRGAN_x2plus.pth", "RealESRGAN_x4plus.pth", "RealESRGAN_x4plus.safetensors",
            "realesr-animevideov3.pth",
            "gray-x4.pth", "not-an-upscaler.pth")},
    }


@pytest.fixture(scope="session")
def server():
    path = comfy_path()
    models = model_files()
    # One host-tier ComfyUI at a time on this machine: each needs ~8 GB and both cores.
    lock = open(cache_dir() / "host-tier.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    srv = ComfyServer(path, models, extra_args=["--cache-none"])
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
        lock.close()


def load_api(name: str) -> dict:
    """The API-format twin of workflows/<name>.json (kept in workflows/api/ so ComfyUI's Templates browser, which
    lists every workflows/*.json, shows only the UI-format files)."""
    return json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())


def nodes_of(api: dict, class_type: str) -> list[str]:
    return [k for k, v in api.items() if v["class_type"] == class_type]


def small(api: dict, size: int = 64, frames: int | None = None) -> dict:
    """A copy of the graph at test size: the client's --size (and --frames, if given) overrides."""
    return apply_overrides(api, frames=frames, size=str(size))


def add_save_latent(api: dict, source: list, prefix: str = "test/latent") -> str:
    node = str(max(int(k) for k in api if k.isdigit()) + 1)
    api[node] = {"class_type": "SaveLatent", "inputs": {"samples": source, "filename_prefix": prefix}}
    return node


def read_latents(server: ComfyServer, entry: dict):
    files = server.output_files(entry, kind="latents")
    assert files, f"no latent saved: {entry.get('outputs')}"
    return [safetensors.torch.load_file(str(f))["latent_tensor"] for f in files]
