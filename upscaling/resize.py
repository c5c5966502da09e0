"""Frame resizing shared by the upscale pipeline and temporal stabilisation (pure torch)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Output size for a scale factor: rounded to the nearest pixel, at least 1."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) to `size` with antialiased bicubic: going down (2x out of a 4x model) it averages like area
    resampling instead of aliasing the detail the model added; going up it is plain bicubic."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    return F.interpolate(frames, size=size, mode="bicubic", align_corners=False, antialias=True)
