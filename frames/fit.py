"""Fit video frames to sizes an SD1.5 UNet takes: multiples of 8 (the VAE's factor), the longer side at `max_side`,
the source's aspect kept by a centred crop ("crop") or by resizing each side on its own ("stretch"). Pure torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MULTIPLE = 8
MIN_SIDE = 64
FIT_MODES = ("crop", "stretch")


class FitError(ValueError):
    """Frames that cannot be fitted to an SD1.5 size; the message names the input."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(W, H): the source scaled so its longer side is max_side, each side then rounded to a multiple of 8.

    Rounding moves the aspect by at most 4 px a side; "crop" cuts those pixels away instead of stretching."""
    if width < 1 or height < 1:
        raise FitError(f"the video's frames are {width}x{height}; a video needs frames of at least 1x1 pixels")
    if max_side < MIN_SIDE or max_side % MULTIPLE:
        raise FitError(f"max_side {max_side} must be a multiple of {MULTIPLE} and at least {MIN_SIDE}")
    scale = max_side / max(width, height)
    out = tuple(max(MULTIPLE, int(round(side * scale / MULTIPLE)) * MULTIPLE) for side in (width, height))
    if min(out) < MIN_SIDE:
        raise FitError(f"a {width}x{height} video fitted to max_side {max_side} is {out[0]}x{out[1]}: a side "
                       f"below {MIN_SIDE} px is too small for SD1.5 (its latent would be under 8 px); raise "
                       f"max_side to at least {int(max_side * MIN_SIDE / min(out) + MULTIPLE - 1) // MULTIPLE * MULTIPLE}"
                       f" or crop the video to a less extreme aspect ratio")
    return out


def fit_frames(images: torch.Tensor, width: int, height: int, mode: str = "crop") -> torch.Tensor:
    """(n, h, w, 3) frames in [0, 1] -> (n, height, width, 3). Bilinear with antialiasing (no aliasing when a
    1080p source shrinks to 512), clamped back to [0, 1]."""
    if mode not in FIT_MODES:
        raise FitError(f"unknown fit '{mode}'; choose one of {', '.join(FIT_MODES)}")
    n, h, w, _ = images.shape
    if (w, h) == (width, height):
        return images
    x = images.movedim(-1, 1)
    if mode == "crop":
        scale = max(width / w, height / h)
        sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
        x = F.interpolate(x, size=(sh, sw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (sh - height) // 2, (sw - width) // 2
        x = x[:, :, top:top + height, left:left + width]
    else:
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).movedim(1, -1).contiguous()
