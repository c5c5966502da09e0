"""Reference computations that tests and benchmarks compare the pack with, or stand in for what ComfyUI does.
Nothing in the pack calls them: production reads its sigma table from the MODEL, and ComfyUI's context handler
blends the windows.
"""
from __future__ import annotations

import torch

# diffusers' beta_schedule="linear", which AnimateDiff (and so Lightning) was trained with (ComfyUI's "sqrt_linear").
LINEAR_START = 0.00085
LINEAR_END = 0.012
TRAIN_STEPS = 1000


def sqrt_linear_sigmas(timesteps: int = TRAIN_STEPS, start: float = LINEAR_START, end: float = LINEAR_END):
    """sigma(t) for t = 0..timesteps-1 under diffusers' "linear" betas (ComfyUI's "sqrt_linear")."""
    betas = torch.linspace(start, end, timesteps, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt().float()


def blend(frames: int, layout: list[list[int]], weights: list[torch.Tensor], predictions: list[torch.Tensor]):
    """Weighted mean of per-window predictions (dim 0 = frames): what ComfyUI's context handler computes from the
    windows and weights of samplers/windows.py."""
    shape = predictions[0].shape[1:]
    total = torch.zeros((frames, *shape), dtype=predictions[0].dtype)
    norm = torch.zeros(frames, dtype=predictions[0].dtype)
    for window, weight, pred in zip(layout, weights, predictions):
        index = torch.tensor(window)
        w = weight.to(pred.dtype)
        total.index_add_(0, index, pred * w.view(-1, *([1] * len(shape))))
        norm.index_add_(0, index, w)
    return total / norm.view(-1, *([1] * len(shape)))
