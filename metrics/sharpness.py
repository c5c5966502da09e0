"""Per-frame sharpness: variance of the Laplacian of the grey image, on the 0-255 scale the usual rule-of-thumb
thresholds use (a blurry photo is below ~100). Higher is sharper; a flat frame is 0. Pure torch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def grey(frames: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) to (N, 1, H, W): Rec. 601 luma for RGB, the channel mean otherwise."""
    x = frames.float()
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x.mean(dim=1, keepdim=True)


def laplacian_variance(frames: torch.Tensor) -> torch.Tensor:
    """One value per frame: variance of the 4-neighbour Laplacian over the interior pixels (no padding, so the border
    invents no edges)."""
    if frames.shape[-1] < 3 or frames.shape[-2] < 3:
        raise ValueError(f"sharpness needs frames of at least 3x3 pixels, got {tuple(frames.shape[-2:])}")
    kernel = torch.tensor(_LAPLACIAN, dtype=torch.float32).view(1, 1, 3, 3)
    response = F.conv2d(grey(frames) * 255.0, kernel)
    return response.flatten(1).var(dim=1, unbiased=False)
