"""Context windows for long clips: which frames the motion module sees together, and how overlapping windows are
blended. Pure functions of integers (and torch for the weights), so every list can be checked without ComfyUI.

Lightning was trained on 16-frame clips and its position table ends at 32 frames, so in a 64-256 frame clip the
motion module sees overlapping windows of `length` frames, blended where they overlap. Where the windows go is the
mode: "motion module" (default) runs the UNet once per step on every frame and each temporal attention per window,
blending the attention outputs (motion/windows.py); "whole UNet" runs the whole UNet per window and blends its
predictions (nodes/context_handler.py). The lists and weights below serve both. With 4 sampler steps there are only
4 chances to hide a seam, so:
  * static windows are spread evenly over the clip: every neighbouring pair overlaps by at least `overlap` frames
    (the usual "last window shifted back" layout leaves the other seams at the bare minimum);
  * uniform shifts the whole layout by a different fraction of the stride at every step (0, 1/2, 1/4, 3/4, ...),
    so the 4 steps put their seams as far apart as possible rather than rotating the clip once per step;
  * looped puts the windows on a ring (the last frames share a window with the first), for clips that loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

SCHEDULES = ("static", "uniform", "looped")
FUSE_METHODS = ("pyramid", "flat", "overlap-linear")
NOISE_TYPES = ("plain", "freenoise")
WHOLE_UNET = "whole UNet"
MOTION_MODULE = "motion module"
# Where the windows are applied: "whole UNet" runs the UNet once per window (ComfyUI's context handler);
# "motion module" runs the UNet once per step on every frame and windows only the temporal attention inside each
# motion module (motion/windows.py), since every other layer of an SD1.5 UNet treats frames independently.
MODES = (MOTION_MODULE, WHOLE_UNET)

DEFAULT_LENGTH = 16      # the clip length Lightning was trained on
# Chosen with dev/benchmarks/window_seams.py (table in README.md, "Why these defaults"): at 4 steps, uniform + overlap-linear
# had the lowest seam ratio and worst seam of every setting costing at most 1.15x the windows of static (pyramid is
# the same under static and equal or slightly worse under uniform; flat is 1.7-2.5x worse); with uniform, overlap
# 6-8 cost 13-35% more windows for no lower worst seam; FreeNoise makes the end of a clip repeat its start, so it
# is opt-in.
DEFAULT_OVERLAP = 4
DEFAULT_SCHEDULE = "uniform"
DEFAULT_FUSE = "overlap-linear"
DEFAULT_NOISE = "plain"
# Chosen by measurement (docs/long_videos.md, "Where the windows go"): on window_seams.py's prior the default setting's
# seam ratio drops from 1.16 (whole UNet) to 1.05, and the 64-frame sampler costs the UNet once per frame instead of
# once per window frame (256 frame-passes over 4 steps instead of 368; sampler timing: dev/benchmarks/long_clip.py).
DEFAULT_MODE = MOTION_MODULE


class ContextWindowError(ValueError):
    """Context-window settings that cannot work; the message names the value and what to use instead."""

    __module__ = "builtins"   # shown as ContextWindowError, not as the pack's folder path (see motion/module.py)


@dataclass(frozen=True)
class WindowOptions:
    """What flows along the ContextOptions wire."""
    length: int = DEFAULT_LENGTH
    overlap: int = DEFAULT_OVERLAP
    schedule: str = DEFAULT_SCHEDULE
    fuse: str = DEFAULT_FUSE
    noise: str = DEFAULT_NOISE
    mode: str = DEFAULT_MODE

    def __post_init__(self):
        if not isinstance(self.length, int) or self.length < 2:
            raise ContextWindowError(f"context length must be at least 2 frames, got {self.length!r}; "
                                     f"use {DEFAULT_LENGTH}, the clip length Lightning was trained on")
        if not isinstance(self.overlap, int) or self.overlap < 0:
            raise ContextWindowError(f"context overlap must be 0 or more frames, got {self.overlap!r}")
        if self.overlap >= self.length:
            raise ContextWindowError(
                f"context overlap {self.overlap} must be smaller than the context length {self.length} (each window "
                f"has to bring at least one new frame); use an overlap of at most {self.length - 1}, "
                f"e.g. {min(DEFAULT_OVERLAP, self.length - 1)}")
        for value, allowed, what in ((self.schedule, SCHEDULES, "schedule"), (self.fuse, FUSE_METHODS, "fuse method"),
                                     (self.noise, NOISE_TYPES, "noise type"), (self.mode, MODES, "window mode")):
            if value not in allowed:
                raise ContextWindowError(f"unknown context {what} '{value}'; choose one of {', '.join(allowed)}")

    @property
    def stride(self) -> int:
        """Largest step between neighbouring window starts that still keeps `overlap` shared frames."""
        return self.length - self.overlap


def _round_div(num: int, den: int) -> int:
    """num / den rounded half up, in integers (Python's round() rounds half to even, which makes lists lumpy)."""
    return (2 * num + den) // (2 * den)


def _spans(starts: list[int], length: int, frames: int) -> list[list[int]]:
    return [[(s + i) % frames for i in range(length)] for s in starts]


def static_starts(frames: int, length: int, overlap: int) -> list[int]:
    """First frame of each static window: as few windows as keep `overlap` shared frames, spread evenly."""
    if frames <= length:
        return [0]
    count = -(-(frames - length) // (length - overlap)) + 1
    return [_round_div(j * (frames - length), count - 1) for j in range(count)]


def van_der_corput(n: int) -> float:
    """n-th point of the base-2 van der Corput sequence: 0, 1/2, 1/4, 3/4, 1/8, ... (bits of n mirrored).

    Every prefix of the sequence is spread as evenly over [0, 1) as a prefix can be, which is what 4 steps need.
    """
    value, scale = 0.0, 0.5
    while n:
        value += scale * (n & 1)
        n >>= 1
        scale /= 2
    return value


def uniform_starts(frames: int, length: int, overlap: int, step: int) -> list[int]:
    """Window starts at sampler step `step`: a regular grid with stride length-overlap, shifted by
    van_der_corput(step) of a stride and clamped to the clip; a window squeezed between two neighbours that already
    share `overlap` frames without it is dropped (it would only cost time)."""
    if frames <= length:
        return [0]
    stride = length - overlap
    shift = int(van_der_corput(step) * stride + 0.5)
    starts = []
    start = shift - stride if shift else 0
    while not starts or starts[-1] < frames - length:
        clamped = min(max(start, 0), frames - length)
        if not starts or clamped != starts[-1]:
            starts.append(clamped)
        start += stride
    k = 1
    while k < len(starts) - 1:
        if starts[k + 1] - starts[k - 1] <= stride:
            del starts[k]
        else:
            k += 1
    return starts


def looped_starts(frames: int, length: int, overlap: int) -> list[int]:
    """Windows evenly spaced around a ring of `frames`: the last ones wrap to the first frames."""
    if frames <= length:
        return [0]
    count = -(-frames // (length - overlap))
    return [_round_div(j * frames, count) for j in range(count)]


def window_starts(frames: int, options: WindowOptions, step: int = 0) -> list[int]:
    if options.schedule == "uniform":
        return uniform_starts(frames, options.length, options.overlap, step)
    if options.schedule == "looped":
        return looped_starts(frames, options.length, options.overlap)
    return static_starts(frames, options.length, options.overlap)


def windows(frames: int, options: WindowOptions, step: int = 0) -> list[list[int]]:
    """Frame indices of every window at sampler step `step` (0-based). A clip that fits in one window is one window."""
    if frames < 1:
        raise ContextWindowError(f"a clip needs at least one frame, got {frames}")
    length = min(options.length, frames)
    return _spans(window_starts(frames, options, step), length, frames)


def window_evaluations(frames: int, options: WindowOptions, steps: int) -> list[int]:
    """How many windows each of `steps` sampler steps runs (the progress bar's units)."""
    return [len(windows(frames, options, step)) for step in range(steps)]


def _shared_run(window: list[int], others: list[set], reverse: bool) -> int:
    """How many leading (trailing if reverse) frames of the window one neighbouring window also holds: the
    frames to crossfade with that neighbour."""
    best = 0
    for other in others:
        count = 0
        for frame in (reversed(window) if reverse else window):
            if frame not in other:
                break
            count += 1
        best = max(best, count)
    return best


def fuse_weights(method: str, layout: list[list[int]]) -> list[torch.Tensor]:
    """Blend weight of each frame of each window (same order as `layout`); all weights are > 0.

    A frame's prediction is the weighted mean over the windows that hold it (ComfyUI divides by the summed weights).
      flat: every frame counts the same, so a window's influence stops abruptly at its edge.
      pyramid: 1, 2, ... up to the middle and back down: a window trusts its centre, where it saw context on both
        sides, more than its edges.
      overlap-linear: 1 everywhere except the frames shared with a neighbour, where it ramps linearly; for two
        windows sharing m frames the ramps are (i+1)/(m+1) and (m-i)/(m+1), which sum to exactly 1 (a crossfade).
    """
    if method not in FUSE_METHODS:
        raise ContextWindowError(f"unknown context fuse method '{method}'; choose one of {', '.join(FUSE_METHODS)}")
    out = []
    sets = [set(w) for w in layout]
    for k, window in enumerate(layout):
        length = len(window)
        pos = torch.arange(length, dtype=torch.float32)
        if method == "flat":
            out.append(torch.ones(length))
        elif method == "pyramid":
            out.append(torch.minimum(pos + 1, length - pos))
        else:
            others = sets[:k] + sets[k + 1:]
            lead, trail = _shared_run(window, others, False), _shared_run(window, others, True)
            ramp_in = torch.where(pos < lead, (pos + 1) / (lead + 1), torch.ones(length))
            ramp_out = torch.where(pos >= length - trail, (length - pos) / (trail + 1), torch.ones(length))
            out.append(torch.minimum(ramp_in, ramp_out))
    return out


def picture(frames: int, options: WindowOptions, steps: int = 1) -> str:
    """Text picture of the windows, one row per window ('#' = frame in the window), for the README and the log."""
    lines = [f"{options.schedule} schedule, {frames} frames, length {options.length}, overlap {options.overlap}"]
    step_list = range(steps) if options.schedule == "uniform" else range(1)
    for step in step_list:
        if options.schedule == "uniform":
            lines.append(f"step {step + 1}:")
        for window in windows(frames, options, step):
            members = set(window)
            lines.append("".join("#" if f in members else "." for f in range(frames)))
    return "\n".join(lines)
