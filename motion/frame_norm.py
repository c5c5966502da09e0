"""AnimateDiff v1's clip-wide GroupNorm, applied to an image UNet's existing GroupNorm layers by forward hooks.

AnimateDiff v1 (and AnimateLCM, trained from it) ran on a UNet3D whose ResBlocks normalise each group over the whole
clip: torch GroupNorm on (batch, C, frames, H, W) takes its mean and variance over every frame. v2 and v3 switched to
per-frame "inflated" GroupNorm, which is what an image UNet does by itself, so only the v1 family needs this.

The image UNet sees frames folded into the batch, (conds*frames, C, H, W). Laying each cond's frames side by side
along H, (conds, C, frames*H, W), gives a GroupNorm the same elements per group, in the same memory order, as the
original's 5-D input, so the layer's own forward (and whatever casting ComfyUI does in it) runs unchanged in between.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


def frames_side_by_side(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(conds*frames, C, H, W) -> (conds, C, frames*H, W)."""
    n, c, h, w = x.shape
    return x.reshape(n // frames, frames, c, h, w).transpose(1, 2).reshape(n // frames, c, frames * h, w)


def frames_in_batch(y: torch.Tensor, frames: int) -> torch.Tensor:
    """The inverse of frames_side_by_side: (conds, C, frames*H, W) -> (conds*frames, C, H, W)."""
    b, c, fh, w = y.shape
    return y.reshape(b, c, frames, fh // frames, w).transpose(1, 2).reshape(b * frames, c, fh // frames, w)


@contextmanager
def clip_wide(norms, frames: int):
    """While in this block, each GroupNorm in `norms` normalises over `frames` consecutive batch entries at a time
    (forward hooks, removed on exit). The layers' weights and forward are not touched."""
    def before(module, args):
        return (frames_side_by_side(args[0], frames), *args[1:])

    def after(module, args, out):
        return frames_in_batch(out, frames)

    handles = [hook for norm in norms
               for hook in (norm.register_forward_pre_hook(before), norm.register_forward_hook(after))]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
