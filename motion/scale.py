"""Motion scale: how much of the motion module's temporal attention reaches the UNet.

Every temporal module returns its input plus a residual (x + delta). With scale s the UNet gets x + s * delta:
1.0 is the module as trained (its output is passed on untouched, bit for bit), 0 skips the module (each frame is
denoised on its own, as a still image), values in between damp the motion and values above 1 exaggerate it.

The scale can differ per frame range ("0-15: 1.0", "50%-100%: 0.5", one range per line, later lines win where ranges
overlap); frames outside every range get the default scale. Ranges are in frames of the whole clip, so with context
windows each window picks the scales of its own frames.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import torch

EXAMPLE = "'0-15: 1.0' or '50%-100%: 0.5'"
_POINT = r"\d+(?:\.\d*)?\s*%?"
_RANGE = re.compile(rf"^(?P<start>{_POINT})\s*(?:-\s*(?P<end>{_POINT}))?\s*:\s*(?P<scale>[-+]?\d*\.?\d+)$")


class MotionScaleError(ValueError):
    """Motion-scale text that cannot be read; the message names the line."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


def _frame(point: str, frames: int, number: int) -> int:
    point = point.replace(" ", "")
    if point.endswith("%"):
        return int(math.floor(float(point[:-1]) / 100.0 * (frames - 1) + 0.5))
    if "." in point:
        raise MotionScaleError(f"motion scale frames line {number}: '{point}' is not a whole frame number")
    return int(point)


@dataclass(frozen=True)
class MotionScale:
    default: float = 1.0
    ranges: tuple = ()   # ((line number, start text, end text, scale), ...), as written

    @classmethod
    def parse(cls, default: float, text: str = "") -> "MotionScale":
        ranges = []
        for number, raw in enumerate((text or "").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = _RANGE.match(line)
            if match is None:
                raise MotionScaleError(f"motion scale frames line {number}: '{line}' is not 'first-last: scale' "
                                       f"(write e.g. {EXAMPLE})")
            scale = float(match["scale"])
            if scale < 0:
                raise MotionScaleError(f"motion scale frames line {number}: scale {scale} is negative; use 0 "
                                       f"(no motion) or more")
            ranges.append((number, match["start"], match["end"] or match["start"], scale))
        scale = cls(default=float(default), ranges=tuple(ranges))
        scale.per_frame(1000)   # whole-number checks now, so a bad line is reported before sampling
        return scale

    @property
    def is_identity(self) -> bool:
        return self.default == 1.0 and all(r[3] == 1.0 for r in self.ranges)

    def per_frame(self, frames: int) -> list[float]:
        scales = [self.default] * frames
        for number, start, end, scale in self.ranges:
            first, last = _frame(start, frames, number), _frame(end, frames, number)
            if last < first:
                raise MotionScaleError(f"motion scale frames line {number}: range {start}-{end} ends before it "
                                       f"starts; write the first frame first")
            for frame in range(first, min(last, frames - 1) + 1):
                scales[frame] = scale
        return scales


@lru_cache(maxsize=64)
def _clip_table(scale: MotionScale, frames: int) -> tuple[float, ...]:
    # window_scales runs in each of the 21 temporal modules of every UNet call; the table only changes with the
    # MODEL's scale (frozen, hashable) and the clip length, so it is computed once per pair.
    return tuple(scale.per_frame(frames))


def window_scales(scale: MotionScale, frames: int, window_indices=None, total_frames=None) -> list[float]:
    """Scales of the `frames` frames a temporal module sees: a context window's own frames of the whole clip
    (window_indices, total_frames), else frames 0..frames-1 of a clip that is just this batch."""
    if window_indices is None or len(window_indices) != frames:
        return list(_clip_table(scale, frames))
    table = _clip_table(scale, total_frames or (max(window_indices) + 1))
    return [table[i] for i in window_indices]


def blend(x: torch.Tensor, out: torch.Tensor, scales: list[float]) -> torch.Tensor:
    """x + s * (out - x) per frame; x and out are (batch*frames, C, H, W) with frames = len(scales). Frames at scale
    1.0 keep `out` itself (bit for bit, not x + (out - x))."""
    frames = len(scales)
    if len(set(scales)) == 1:
        return out if scales[0] == 1.0 else x + (out - x) * scales[0]
    s = torch.tensor(scales, device=x.device, dtype=x.dtype).view(1, frames, 1, 1, 1)
    shape = (x.shape[0] // frames, frames, *x.shape[1:])
    mixed = x.view(shape) + (out - x).view(shape) * s
    return torch.where(s == 1.0, out.view(shape), mixed).view(x.shape)
