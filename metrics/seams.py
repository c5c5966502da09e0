"""Seam metric: how much bigger the frame-to-frame change is where windows begin or end than inside windows.

A seam is a jump between two neighbouring frames that one window treats differently from the other (one frame is
in a window, the next is not). On a seamless clip the mean absolute change across those pairs equals the change
between pairs inside windows, so the ratio is 1.0; a visible seam every 16 frames shows up as a ratio well above 1.
"""
from __future__ import annotations

import torch


def frame_changes(frames: torch.Tensor, looped: bool = False) -> torch.Tensor:
    """Mean absolute difference between frame i and i+1 (dim 0 = frames), one value per pair. With looped, the pair
    (last, first) is appended, since a loop plays it too."""
    x = frames.float()
    if looped:
        x = torch.cat([x, x[:1]])
    return (x[1:] - x[:-1]).abs().flatten(1).mean(dim=1)


def boundary_pairs(frames: int, layouts: list[list[list[int]]], looped: bool = False) -> list[bool]:
    """For each neighbouring pair (i, i+1) (and (last, first) if looped): does some window hold one frame of the
    pair but not the other, at any sampler step? `layouts` is one window list per step."""
    pairs = frames if looped else frames - 1
    sets = [set(w) for layout in layouts for w in layout]
    return [any((i in s) != ((i + 1) % frames in s) for s in sets) for i in range(pairs)]


def seam_ratio(frames: torch.Tensor, layouts: list[list[list[int]]], looped: bool = False) -> float:
    """Mean change across window boundaries divided by mean change inside windows (1.0 = no seams)."""
    changes = frame_changes(frames, looped)
    mask = torch.tensor(boundary_pairs(frames.shape[0], layouts, looped))
    if mask.all() or not mask.any():
        raise ValueError(f"seam ratio needs pairs both at and away from window boundaries; this layout has "
                         f"{int(mask.sum())} boundary pairs out of {len(mask)}")
    return float(changes[mask].mean() / changes[~mask].mean())
