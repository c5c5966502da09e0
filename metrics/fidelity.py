"""Agreement with a reference clip of the same size (e.g. the same seed with other settings): per-frame PSNR and
SSIM, and PSNR of the frame-to-frame changes (does the clip move like the reference). Pure torch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .flicker import psnr
from .sharpness import grey

SSIM_C1, SSIM_C2 = 0.01 ** 2, 0.03 ** 2         # Wang et al. 2004 constants for a [0, 1] range


def check_reference(frames: torch.Tensor, reference: torch.Tensor) -> None:
    if tuple(frames.shape) != tuple(reference.shape):
        raise ValueError(f"the reference clip must match the clip frame for frame: clip {tuple(frames.shape)}, "
                         f"reference {tuple(reference.shape)} (N, C, H, W); resize or trim one of them")


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).float()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM of the grey images of (N, C, H, W) clips in [0, 1]: 11x11 Gaussian window (sigma 1.5), mean
    over the positions where the window fits (shrunk to the frame for tiny frames). 1.0 for identical frames."""
    x, y = grey(a).double(), grey(b).double()
    size = min(11, x.shape[-1], x.shape[-2])
    g = _gaussian(size).double()
    kernel = (g[:, None] * g[None, :]).view(1, 1, size, size)

    def blur(t):
        return F.conv2d(t, kernel)
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x ** 2, blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_x ** 2 + mu_y ** 2 + SSIM_C1) *
                                                                  (var_x + var_y + SSIM_C2))
    return index.flatten(1).mean(dim=1)


def temporal_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (peak 1) between the two clips' frame-to-frame changes: high when the clip changes as the reference does,
    whatever their per-frame difference; inf when both change identically."""
    if a.shape[0] < 2:
        raise ValueError("temporal PSNR needs at least 2 frames")
    da, db = a[1:].double() - a[:-1].double(), b[1:].double() - b[:-1].double()
    mse = (da - db).pow(2).mean()
    return float(10 * torch.log10(1.0 / mse))
