"""Random-weight Real-ESRGAN files in the layouts the official releases use (no downloads, no ComfyUI).

RRDBNet files (RealESRGAN_x4plus, x2plus, x4plus_anime_6B) are basicsr state dicts under "params_ema";
SRVGGNetCompact files (realesr-animevideov3, realesr-general-x4v3) are under "params". spandrel detects the family from
these keys, so a file built here loads through the same path as a downloaded one. Weights follow basicsr's init
(Kaiming, x0.1 inside the dense blocks) so activations stay in range and outputs are real images, not saturated.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import safetensors.torch
import torch
import torch.nn.functional as F
from spandrel import ImageModelDescriptor, ModelLoader

from dev.harness.motion_files import cache_dir

GROWTH = 32   # RRDB growth channels; spandrel builds every RRDB with gc=32, as the releases do


def _conv(gen, out_ch: int, in_ch: int, gain: float = 1.0, bias: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    std = gain * math.sqrt(2.0 / (in_ch * 9))
    return std * torch.randn(out_ch, in_ch, 3, 3, generator=gen), torch.full((out_ch,), bias)


def rrdb_state_dict(scale: int = 4, num_blocks: int = 23, num_feat: int = 64, seed: int = 0) -> dict:
    """basicsr RRDBNet: x2 and x1 models pixel-unshuffle the input first (12 or 48 input channels) and always
    upsample twice, as RealESRGAN_x2plus does."""
    gen = torch.Generator().manual_seed(seed)
    in_ch = 3 * {4: 1, 2: 4, 1: 16}[scale]
    sd = {}

    def put(name, out_ch, in_ch_, **kw):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = _conv(gen, out_ch, in_ch_, **kw)

    put("conv_first", num_feat, in_ch)
    for block in range(num_blocks):
        for rdb in (1, 2, 3):
            for j in range(1, 5):
                put(f"body.{block}.rdb{rdb}.conv{j}", GROWTH, num_feat + (j - 1) * GROWTH, gain=0.1)
            put(f"body.{block}.rdb{rdb}.conv5", num_feat, num_feat + 4 * GROWTH, gain=0.1)
    put("conv_body", num_feat, num_feat)
    put("conv_up1", num_feat, num_feat)
    put("conv_up2", num_feat, num_feat)
    put("conv_hr", num_feat, num_feat)
    # No global skip in RRDBNet: a mid-grey bias and a small gain keep random outputs inside [0, 1].
    put("conv_last", 3, num_feat, gain=0.05, bias=0.5)
    return {"params_ema": sd}


def srvgg_state_dict(num_conv: int = 16, num_feat: int = 64, scale: int = 4, channels: int = 3, seed: int = 0) -> dict:
    """SRVGGNetCompact: body.0 conv, then (PReLU, conv) pairs, a PReLU and the pixel-shuffle conv; the network adds a
    nearest upsample of the input, so the convs only learn a residual (kept small here)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    index = 0
    in_ch = channels
    for _ in range(num_conv + 1):
        sd[f"body.{index}.weight"], sd[f"body.{index}.bias"] = _conv(gen, num_feat, in_ch)
        sd[f"body.{index + 1}.weight"] = torch.full((num_feat,), 0.25)   # PReLU, PyTorch's default slope
        index += 2
        in_ch = num_feat
    sd[f"body.{index}.weight"], sd[f"body.{index}.bias"] = _conv(gen, channels * scale * scale, num_feat, gain=0.05)
    return {"params": sd}


# Official file names -> (builder, arguments as released). Unit tests shrink the block counts for speed.
RELEASES = {
    "RealESRGAN_x4plus.pth": (rrdb_state_dict, {"scale": 4, "num_blocks": 23}),
    "RealESRGAN_x2plus.pth": (rrdb_state_dict, {"scale": 2, "num_blocks": 23}),
    "RealESRGAN_x4plus_anime_6B.pth": (rrdb_state_dict, {"scale": 4, "num_blocks": 6}),
    "realesr-animevideov3.pth": (srvgg_state_dict, {"num_conv": 16, "scale": 4}),
    "realesr-general-x4v3.pth": (srvgg_state_dict, {"num_conv": 32, "scale": 4}),
}


def _not_an_upscaler(seed: int = 0) -> dict:
    return {"encoder.weight": torch.randn(8, 8, generator=torch.Generator().manual_seed(seed))}


def _training_state(seed: int = 0) -> dict:
    """A training checkpoint: the weights plus an options object, which a weights-only load refuses."""
    return {**srvgg_state_dict(num_conv=1, seed=seed), "opt": argparse.Namespace(lr=1e-4)}


def _empty(seed: int = 0) -> None:
    return None     # an unfinished download: a 0-byte file


# Files the host tier uses to check the refusals: a grayscale model, one spandrel cannot identify, a file whose pickle
# holds more than weights, and an empty one.
REFUSED = {
    "gray-x4.pth": (srvgg_state_dict, {"num_conv": 4, "channels": 1}),
    "not-an-upscaler.pth": (_not_an_upscaler, {}),
    "train-state.pth": (_training_state, {}),
    "empty.pth": (_empty, {}),
}


# Comfy-Org/Real-ESRGAN_repackaged: the same tensors as the .pth release, flat (no params_ema wrapper), as
# .safetensors; the form ComfyUI's own templates (and its missing-models download) use.
REPACKAGED = {"RealESRGAN_x4plus.safetensors": "RealESRGAN_x4plus.pth"}


def release_state_dict(name: str, seed: int = 0, **overrides) -> dict:
    if name in REPACKAGED:
        (inner,) = release_state_dict(REPACKAGED[name], seed, **overrides).values()
        return inner
    builder, kwargs = RELEASES.get(name) or REFUSED[name]
    return builder(**{**kwargs, **overrides}, seed=seed)


def cached_upscale_file(name: str, seed: int = 0) -> Path:
    """A full-size random file saved once under the cache as upscale_models/<name> (torch.save, like the .pth
    releases, so core's Load Upscale Model reads it through its weights-only path)."""
    path = cache_dir() / "upscale_models" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        if name.endswith(".safetensors"):
            safetensors.torch.save_file(release_state_dict(name, seed), str(tmp))
        elif release_state_dict(name, seed) is None:
            tmp.write_bytes(b"")
        else:
            torch.save(release_state_dict(name, seed), str(tmp))
        tmp.replace(path)
    return path


def load_release(name: str, seed: int = 0, **overrides) -> ImageModelDescriptor:
    """The spandrel descriptor of a random release-layout file, detected the way core's loader detects it."""
    return ModelLoader().load_from_state_dict(release_state_dict(name, seed, **overrides)).eval()


def moving_clip(frames: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(N, 3, size, size): a still smooth background and a textured patch (size/4 square) moving 1 px right per
    frame, the test clip for temporal stabilisation."""
    gen = torch.Generator().manual_seed(seed)
    background = F.interpolate(torch.rand(1, 3, size // 4, size // 4, generator=gen), size=(size, size),
                               mode="bilinear", align_corners=False)
    side = size // 4
    assert 2 + frames + side <= size, "the patch would leave the frame"
    patch = torch.rand(1, 3, side, side, generator=gen)
    clip = background.repeat(frames, 1, 1, 1)
    top = (size - side) // 2
    for t in range(frames):
        clip[t, :, top:top + side, 2 + t:2 + t + side] = patch[0]
    return clip
