"""Run a per-frame model over a clip a slice of frames at a time, into one preallocated result (pure torch).

Core's VAE decode and encode pick their batch from free memory, so with RAM to spare they take a whole long clip at
once and hold every frame's activations together: the peak grows with the clip's length. In slices the peak is the
finished frames plus one slice's activations, however long the clip (nodes/decode_nodes.py, nodes/video_nodes.py).
"""
from __future__ import annotations

from typing import Callable

import torch

DEFAULT_FRAMES_PER_BATCH = 8   # keeps a 64-frame clip's decode within its 16-frame footprint


def in_slices(fn: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor, per_batch: int,
              before_slice: Callable[[], None] | None = None,
              on_slice: Callable[[int], None] | None = None) -> torch.Tensor:
    """fn maps n frames to n results: (n, C, h, w) latents -> (n, H, W, 3) images (or (1, n, H, W, 3) from video
    VAEs), or images -> latents. before_slice may raise to stop (interrupt); on_slice gets each slice's frame count
    (progress)."""
    if per_batch < 1:
        raise ValueError(f"frames_per_batch must be at least 1, got {per_batch}")
    if frames.shape[0] < 1:
        raise ValueError("there are no frames")
    out = None
    for start in range(0, frames.shape[0], per_batch):
        if before_slice is not None:
            before_slice()
        result = fn(frames[start:start + per_batch])
        result = result.reshape(-1, *result.shape[-3:])
        if out is None:
            out = torch.empty((frames.shape[0], *result.shape[1:]), dtype=result.dtype, device=result.device)
        out[start:start + result.shape[0]] = result
        del result   # let this slice's result go before the next slice runs
        if on_slice is not None:
            on_slice(min(per_batch, frames.shape[0] - start))
    return out
