"""FreeNoise-style initial noise for windowed sampling (Qiu et al. 2023, "noise rescheduling").

With plain noise every window starts from unrelated noise, so neighbouring windows are free to drift apart in
content. FreeNoise lets every window start from the same set of noise frames, only reordered: walking the static
windows left to right, the frames a window adds are given the noise of the frames its predecessor drops, shuffled.
Each window therefore holds a permutation of the first window's noise, and neighbouring windows share their
overlap exactly as before.
"""
from __future__ import annotations

import torch

from .windows import static_starts


def free_noise(noise: torch.Tensor, length: int, overlap: int, seed: int) -> torch.Tensor:
    """A copy of `noise` (frames on dim 0) with FreeNoise's repeated, shuffled frames; clips of at most `length`
    frames come back unchanged. The shuffles are drawn from their own generator seeded with `seed`, so the same
    seed gives the same clip and the sampler's noise stream is left alone."""
    frames = noise.shape[0]
    out = noise.clone()
    if frames <= length:
        return out
    gen = torch.Generator().manual_seed(seed)
    starts = static_starts(frames, length, overlap)
    for start, following in zip(starts, starts[1:]):
        # Window [start, start+length) is followed by [following, following+length): it drops frames
        # [start, following) and adds [start+length, following+length), the same number.
        dropped = torch.arange(start, following)
        added = torch.arange(start + length, following + length)
        out[added] = out[dropped[torch.randperm(len(dropped), generator=gen)]]
    return out

