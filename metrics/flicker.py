"""Flicker of an upscaled clip: how much the fine detail changes from frame to frame, against how much the input
changed (pure torch). Measures what upscaling/temporal_stabilize.py does; dev/benchmarks/upscale.py reports it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..upscaling.resize import resize_frames

FLICKER_FLOOR = 1e-3        # the input-change floor of the flicker index, so a frozen clip gives a finite number

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def high_pass(frames: torch.Tensor) -> torch.Tensor:
    """frames minus a 5x5 binomial blur (about a 1-pixel Gaussian): the detail band an upscaler adds."""
    channels = frames.shape[1]
    kernel = frames.new_tensor(_BINOMIAL) / 16
    blurred = F.pad(frames, (2, 2, 2, 2), mode="replicate")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, 5).expand(channels, 1, 1, 5), groups=channels)
    blurred = F.conv2d(blurred, kernel.view(1, 1, 5, 1).expand(channels, 1, 5, 1), groups=channels)
    return frames - blurred


def flicker_index(low: torch.Tensor, high: torch.Tensor, floor: float = FLICKER_FLOOR) -> float:
    """Mean frame-to-frame change of the output's high-pass detail, divided by the mean frame-to-frame change of the
    input (resized to the output size; at least `floor`). Motion moves detail too, so the index is only comparable
    between upscales of the same clip: lower means less flicker."""
    if high.shape[0] < 2 or low.shape[0] != high.shape[0]:
        raise ValueError(f"the flicker index needs the same number (>= 2) of input and output frames, "
                         f"got {low.shape[0]} and {high.shape[0]}")
    size = tuple(high.shape[-2:])
    detail_change = input_change = 0.0
    previous_detail, previous_input = high_pass(high[:1]), resize_frames(low[:1], size)
    for t in range(1, high.shape[0]):
        detail, upsized = high_pass(high[t:t + 1]), resize_frames(low[t:t + 1], size)
        detail_change += (detail - previous_detail).abs().mean().item()
        input_change += (upsized - previous_input).abs().mean().item()
        previous_detail, previous_input = detail, upsized
    pairs = high.shape[0] - 1
    return (detail_change / pairs) / max(input_change / pairs, floor)


def detail_flicker(frames: torch.Tensor) -> float:
    """Flicker of one clip with no input to compare against: the mean frame-to-frame change of its high-pass detail,
    in [0, 1] intensity units. 0 for a still clip; motion moves detail too, so compare clips of the same scene."""
    if frames.shape[0] < 2:
        raise ValueError(f"detail flicker needs at least 2 frames, got {frames.shape[0]}")
    detail = high_pass(frames.float())
    return float((detail[1:] - detail[:-1]).abs().mean())


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR in dB of (N, ...) tensors in [0, 1]; inf for identical frames."""
    mse = (a - b).double().pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)
