"""The flicker index (metrics/flicker.py) on clips whose answer is known by hand."""
import pytest
import torch

from adlightning.metrics.flicker import FLICKER_FLOOR, flicker_index, high_pass
from adlightning.upscaling.resize import resize_frames


def test_flicker_index_is_zero_without_detail_and_linear_in_flicker():
    low = torch.linspace(0.2, 0.5, 4).view(4, 1, 1, 1).expand(4, 3, 8, 8).contiguous()
    plain = resize_frames(low, (16, 16))
    assert flicker_index(low, plain) < 1e-6
    pattern = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    once, twice = flicker_index(low, plain + 0.01 * pattern), flicker_index(low, plain + 0.02 * pattern)
    assert once > 0.05
    assert twice == pytest.approx(2 * once, rel=1e-4)
    input_change = 0.1                          # linspace steps of the constant frames
    expected = (high_pass(0.01 * pattern)[1:] - high_pass(0.01 * pattern)[:-1]).abs().mean().item() / input_change
    assert once == pytest.approx(expected, rel=1e-4)


def test_a_frozen_clip_is_measured_against_the_floor():
    low = torch.full((3, 3, 8, 8), 0.4)
    high = resize_frames(low, (16, 16)) + 0.01 * torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    detail = high_pass(high)
    expected = (detail[1:] - detail[:-1]).abs().mean().item() / FLICKER_FLOOR
    assert flicker_index(low, high) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="same number"):
        flicker_index(low[:1], high[:1])


def test_high_pass_removes_flat_areas_and_keeps_fine_detail():
    assert high_pass(torch.full((1, 3, 9, 9), 0.3)).abs().max() < 1e-7
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[0, 0, 4, 4] = 1.0
    detail = high_pass(impulse)
    assert detail[0, 0, 4, 4].item() == pytest.approx(1 - (6 / 16) ** 2)
    assert detail[0, 0, 4, 5].item() == pytest.approx(-(6 / 16) * (4 / 16))
    assert detail.sum().item() == pytest.approx(0.0, abs=1e-6)
