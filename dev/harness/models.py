"""Every model file the host tier and the benchmarks need, under the names the shipped workflows use.

The files are random-weight, full-size, made once and cached outside the repo (harness.motion_files.cache_dir).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dev.harness.comfy_server import REPO
from dev.harness.motion_files import cache_dir, cached_file, cached_motion_lora
from dev.harness.upscale_files import cached_upscale_file

CHECKPOINT_NAME = "v1-5-pruned-emaonly-fp16.safetensors"   # the name the shipped workflows use
LIGHTNING_NAME = "animatediff_lightning_4step_comfyui.safetensors"
V2_NAME = "mm_sd_v15_v2.safetensors"
CONTROLNET_NAME = "control_v11p_sd15_canny_fp16.safetensors"   # the name the v2v workflow uses


def _run_with_comfy(comfy: str, module: str, out: Path) -> None:
    """Run one of the harness's model writers in its own process with ComfyUI's modules importable (ComfyUI's folder
    first, so its nodes.py is `nodes`; then the repository, for `dev`; then whatever PYTHONPATH held, e.g. a wheel
    folder)."""
    path = os.pathsep.join(p for p in (comfy, str(REPO), os.environ.get("PYTHONPATH")) if p)
    subprocess.run([sys.executable, "-m", module, str(out)], check=True, cwd=comfy,
                   env={**os.environ, "PYTHONPATH": path})


def _made_with_comfy(comfy: str, cached: str, module: str) -> Path:
    """The cached file at `cached` (under the fixture cache), written first by `module` with ComfyUI's own classes."""
    path = cache_dir() / cached
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _run_with_comfy(comfy, module, path)
    return path


def sd15_checkpoint(comfy: str) -> Path:
    """A random SD1.5 checkpoint, made with ComfyUI's own model classes (hence the ComfyUI tree)."""
    return _made_with_comfy(comfy, "checkpoints/random_sd15.safetensors", "dev.harness.make_sd15")


def sd15_controlnet(comfy: str) -> Path:
    """A random SD1.5 ControlNet in the control_model.* layout core's loader reads, made with ComfyUI's classes."""
    return _made_with_comfy(comfy, "controlnet/random_sd15_controlnet.safetensors", "dev.harness.make_controlnet")


def model_files(comfy: str) -> dict[str, dict[str, Path]]:
    return {
        "checkpoints": {CHECKPOINT_NAME: sd15_checkpoint(comfy)},
        "animatediff_models": {
            LIGHTNING_NAME: cached_file("v2", LIGHTNING_NAME),
            "animatediff_lightning_4step_diffusers.safetensors":
                cached_file("diffusers", "animatediff_lightning_4step_diffusers.safetensors"),
            # The browser check switches the loader to the 8-step name (steps follow the file name); same weights.
            "animatediff_lightning_8step_comfyui.safetensors": cached_file("v2", LIGHTNING_NAME),
            # The A/B study's other configuration, AnimateDiff v2 (no Lightning step count in the name); same weights.
            V2_NAME: cached_file("v2", LIGHTNING_NAME),
        },
        "animatediff_motion_lora": {"v2_lora_ZoomIn.ckpt": cached_motion_lora()},
        "controlnet": {CONTROLNET_NAME: sd15_controlnet(comfy)},
        "upscale_models": {name: cached_upscale_file(name) for name in (
            "RealESRGAN_x2plus.pth", "RealESRGAN_x4plus.pth", "RealESRGAN_x4plus.safetensors",
            "realesr-animevideov3.pth",
            "gray-x4.pth", "not-an-upscaler.pth", "train-state.pth", "empty.pth")},
    }
