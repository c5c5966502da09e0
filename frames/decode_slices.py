"""Decode a clip's latents a slice of frames at a time into one preallocated image stack (pure torch).

The peak is the finished frames plus one slice's decoder activations, however long the clip; see
nodes/decode_nodes.py for why core's own batching does not give that.
"""
from __future__ import annotations

from typing import Callable

import torch


def decode_in_slices(decode: Callable[[torch.Tensor], torch.Tensor], latent: torch.Tensor, per_batch: int,
                     before_slice: Callable[[], None] | None = None,
                     on_slice: Callable[[int], None] | None = None) -> torch.Tensor:
    """decode: (n, C, h, w) latents -> (n, H, W, 3) images, or (1, n, H, W, 3) from video VAEs.
    before_slice may raise to stop (interrupt); on_slice gets each slice's frame count (progress)."""
    if per_batch < 1:
        raise ValueError(f"frames_per_batch must be at least 1, got {per_batch}")
    out = None
    for start in range(0, latent.shape[0], per_batch):
        if before_slice is not None:
            before_slice()
        images = decode(latent[start:start + per_batch])
        images = images.reshape(-1, *images.shape[-3:])
        if out is None:
            out = torch.empty((latent.shape[0], *images.shape[1:]), dtype=images.dtype, device=images.device)
        out[start:start + images.shape[0]] = images
        del images   # let this slice's result go before the next slice decodes
        if on_slice is not None:
            on_slice(min(per_batch, latent.shape[0] - start))
    return out
