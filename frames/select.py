"""Which source frames a video loader keeps (start offset, every n-th, at most N), and the audio that goes with
them. Pure torch."""
from __future__ import annotations

from dataclasses import dataclass

import torch


class SelectError(ValueError):
    """A frame selection that keeps no frame; the message names the input."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


@dataclass(frozen=True)
class FrameSelection:
    start: int = 0        # first source frame kept (0-based)
    every_nth: int = 1    # keep one frame in every_nth
    max_frames: int = 0   # at most this many frames; 0 = no limit

    def __post_init__(self):
        if self.start < 0:
            raise SelectError(f"start_frame must be 0 or more, got {self.start}")
        if self.every_nth < 1:
            raise SelectError(f"every_nth must be at least 1 (1 keeps every frame), got {self.every_nth}")
        if self.max_frames < 0:
            raise SelectError(f"max_frames must be 0 (no limit) or more, got {self.max_frames}")

    def keeps(self, index: int) -> bool:
        """Whether source frame `index` is kept (ignoring max_frames, which the caller counts)."""
        return index >= self.start and (index - self.start) % self.every_nth == 0

    def done(self, kept: int) -> bool:
        return 0 < self.max_frames <= kept

    def indices(self, total: int) -> list[int]:
        """The kept frame indices of a `total`-frame source."""
        out = list(range(self.start, total, self.every_nth))
        return out[:self.max_frames] if self.max_frames else out

    def fps(self, source_fps: float) -> float:
        """Frame rate that keeps the clip's duration: every_nth frames of the source become one."""
        return source_fps / self.every_nth

    def span_seconds(self, kept: int, source_fps: float) -> tuple[float, float]:
        """(start, duration) in seconds of the source that `kept` selected frames cover."""
        return self.start / source_fps, kept * self.every_nth / source_fps


def trim_audio(waveform: torch.Tensor, sample_rate: int, start_s: float, duration_s: float) -> torch.Tensor:
    """(batch, channels, samples) -> the samples from start_s for duration_s, zero-padded at the end if the audio
    stops early, so the audio always lasts as long as the frames."""
    first = int(round(start_s * sample_rate))
    count = int(round(duration_s * sample_rate))
    out = waveform[..., first:first + count]
    if out.shape[-1] < count:
        out = torch.nn.functional.pad(out, (0, count - out.shape[-1]))
    return out
