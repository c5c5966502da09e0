"""Encode a clip's frames to latents a slice of frames at a time into one preallocated latent (pure torch).

The encoder's activations for a 512 px frame are far larger than its latent, so encoding every frame together makes
the peak grow with the clip's length; slices keep it at the finished latents plus one slice's activations (see
nodes/video_nodes.py)."""
from __future__ import annotations

from typing import Callable

import torch


def encode_in_slices(encode: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, per_batch: int,
                     before_slice: Callable[[], None] | None = None,
                     on_slice: Callable[[int], None] | None = None) -> torch.Tensor:
    """encode: (n, H, W, 3) images -> (n, C, h, w) latents. before_slice may raise to stop (interrupt); on_slice gets
    each slice's frame count (progress)."""
    if per_batch < 1:
        raise ValueError(f"frames_per_batch must be at least 1, got {per_batch}")
    if images.shape[0] < 1:
        raise ValueError("there are no frames to encode")
    out = None
    for start in range(0, images.shape[0], per_batch):
        if before_slice is not None:
            before_slice()
        latent = encode(images[start:start + per_batch])
        if out is None:
            out = torch.empty((images.shape[0], *latent.shape[1:]), dtype=latent.dtype, device=latent.device)
        out[start:start + latent.shape[0]] = latent
        del latent
        if on_slice is not None:
            on_slice(min(per_batch, images.shape[0] - start))
    return out
