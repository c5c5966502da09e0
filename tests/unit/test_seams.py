"""Seam metric (metrics/seams.py): boundary pairs and the ratio, on clips with known jumps."""
import pytest
import torch

from adlightning.metrics.seams import boundary_pairs, frame_changes, seam_ratio
from adlightning.samplers.windows import WindowOptions, windows

STATIC = WindowOptions(schedule="static")


def test_frame_changes_golden():
    clip = torch.tensor([0.0, 1.0, 3.0, 3.0]).view(4, 1, 1)
    assert frame_changes(clip).tolist() == [1.0, 2.0, 0.0]
    assert frame_changes(clip, looped=True).tolist() == [1.0, 2.0, 0.0, 3.0]


def test_boundary_pairs_golden():
    layout = windows(20, STATIC)   # 0-15, 4-19
    pairs = boundary_pairs(20, [layout])
    assert [i for i, b in enumerate(pairs) if b] == [3, 15]          # 3|4 (window 2 starts), 15|16 (window 1 ends)
    looped = windows(20, WindowOptions(schedule="looped"))          # 0-15, 10-19+0-5
    # 5|6 and 15|16: window 1 ends; 9|10: window 2 starts; 19|0: window 1 starts (the loop pair)
    assert [i for i, b in enumerate(boundary_pairs(20, [looped], looped=True)) if b] == [5, 9, 15, 19]
    uniform = [windows(64, WindowOptions(schedule="uniform"), s) for s in range(4)]
    # 16 window starts (3, 6, ..., 48) and 16 window ends (15, 18, ..., 60) over the 4 steps
    assert sum(boundary_pairs(64, uniform)) == 32


def test_ratio_sees_a_jump_at_each_boundary():
    layout = windows(40, STATIC)   # 0-15, 12-27, 24-39; boundaries at pairs 11, 15, 23, 27
    smooth = torch.arange(40, dtype=torch.float32).view(40, 1)
    assert seam_ratio(smooth, [layout]) == pytest.approx(1.0)
    jumpy = smooth.clone()
    jumpy[12:] += 3.0                         # a step of 4 instead of 1 at pair 11|12 only
    # boundary pairs: 11 (4), 15, 23, 27 (1 each) -> mean 7/4; inside: 1.
    assert seam_ratio(jumpy, [layout]) == pytest.approx(7 / 4)


def test_ratio_needs_both_kinds_of_pairs():
    with pytest.raises(ValueError, match="needs pairs both at and away from window boundaries"):
        seam_ratio(torch.zeros(16, 1), [windows(16, STATIC)])
