"""Temporal stabilisation of per-frame upscaled video, and the flicker index that measures it (pure torch).

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
FLICKER_FLOOR = 1e-3        # the input-change floor of the flicker index, so a frozen clip gives a finite number

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


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


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR in dB of (N, ...) tensors in [0, 1]; inf for identical frames."""
    mse = (a - b).double().pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)
