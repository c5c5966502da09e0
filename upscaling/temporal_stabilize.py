"""Temporal stabilisation of per-frame upscaled video (pure torch); metrics/flicker.py measures what it does.

A per-frame upscaler invents high-frequency detail independently in every frame, so texture that is still in the input
shimmers in the output. Stabilisation only touches that invented part: the detail d_t = up_t - base_t, where base_t
is the input frame resized to the output size. Where the input is still, d_t is averaged along time (an exponential
smoother run forwards and backwards, so neither direction leads); where the input changed, the carry-over weight
falls to zero and the frame keeps its own detail, so motion is not smeared. The low frequencies always come from the
current input frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .resize import resize_frames

DEFAULT_STRENGTH = 0.8      # carry-over of detail between still frames: noise power falls to about a tenth
DEFAULT_THRESHOLD = 0.03    # input change (0..1) at which carry-over falls to 1/e; VAE noise is ~0.004-0.01


def stillness(previous: torch.Tensor, current: torch.Tensor, size: tuple[int, int],
              threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """(1, 1, H, W) weights in [0, 1] at the output size: 1 where the input frame pair (1, C, h, w) is unchanged,
    falling to 0 as it changes. The change is max-pooled over 3x3 input pixels so the edges of moving things count
    as moving too."""
    change = (current - previous).abs().amax(dim=1, keepdim=True)
    change = F.max_pool2d(change, 3, stride=1, padding=1)
    still = torch.exp(-(change / threshold) ** 2)
    return F.interpolate(still, size=size, mode="bilinear", align_corners=False)


def stabilize(low: torch.Tensor, high: torch.Tensor, strength: float = DEFAULT_STRENGTH,
              threshold: float = DEFAULT_THRESHOLD, device: torch.device | None = None) -> torch.Tensor:
    """Stabilised copy of `high` (N, C, H, W), the upscale of `low` (N, C, h, w); both in [0, 1]. The math runs on
    `device` (default: high's device) a frame at a time, so the clip may be kept on the host while a GPU does the
    work; the result is on high's device."""
    if low.shape[0] != high.shape[0]:
        raise ValueError(f"{low.shape[0]} input frames but {high.shape[0]} upscaled frames")
    count = high.shape[0]
    size = tuple(high.shape[-2:])
    if count < 2 or strength <= 0:
        return high.clone()
    device = torch.device(device) if device is not None else high.device

    def frame(frames, t):
        return frames[t:t + 1].to(device)

    def base(t):
        return resize_frames(frame(low, t), size)

    def carry(a, b):
        return strength * stillness(frame(low, a), frame(low, b), size, threshold)

    out = torch.empty_like(high)
    # Backward pass first, kept in `out`; the forward pass then reads it frame by frame and overwrites it.
    smoothed = frame(high, count - 1) - base(count - 1)
    out[-1:] = smoothed
    for t in range(count - 2, -1, -1):
        detail = frame(high, t) - base(t)
        smoothed = detail + carry(t + 1, t) * (smoothed - detail)
        out[t:t + 1] = smoothed
    for t in range(count):
        frame_base = base(t)
        detail = frame(high, t) - frame_base
        smoothed = detail if t == 0 else detail + carry(t - 1, t) * (smoothed - detail)
        out[t:t + 1] = (frame_base + 0.5 * (smoothed + frame(out, t))).clamp(0, 1)
    return out
