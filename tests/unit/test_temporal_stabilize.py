"""Temporal stabilisation and the flicker index on synthetic clips."""
import pytest
import torch
import torch.nn.functional as F

from upscaling.resize import resize_frames
from upscaling.temporal_stabilize import FLICKER_FLOOR, flicker_index, high_pass, psnr, stabilize, stillness
from harness.upscale_files import load_release, moving_clip

NOISE = 0.02    # per-frame noise added to the upscale: about what a per-frame GAN upscaler's shimmer amounts to


@pytest.fixture(scope="module")
def upscaled():
    low = moving_clip()
    model = load_release("realesr-animevideov3.pth", num_conv=4)
    with torch.no_grad():
        clean = model(low)
    noise = NOISE * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    return low, clean, (clean + noise).clamp(0, 1)


def moving_mask(low: torch.Tensor, size) -> torch.Tensor:
    """Output pixels whose input changed from the previous or to the next frame."""
    change = torch.zeros(low.shape[0], 1, *low.shape[-2:])
    step = (low[1:] - low[:-1]).abs().amax(dim=1, keepdim=True)
    change[1:] = step
    change[:-1] = torch.maximum(change[:-1], step)
    return F.interpolate((change > 0.05).float(), size=size, mode="nearest").bool()


def test_stabilisation_lowers_flicker_and_leaves_motion_alone(upscaled):
    low, clean, noisy = upscaled
    stable = stabilize(low, noisy)
    before, after, floor = flicker_index(low, noisy), flicker_index(low, stable), flicker_index(low, clean)
    assert before > 2 * floor, "the added noise must register as flicker, or the test proves nothing"
    assert after < 0.5 * before
    assert psnr(stable, noisy).min() > 32          # noise of 0.02 alone is 34 dB: only the noise went
    moving = moving_mask(low, clean.shape[-2:]).expand_as(clean)
    assert 0.03 < moving.float().mean() < 0.2
    # Moving pixels keep their own frame's detail: changed by a small fraction of the noise at most.
    assert (stable - noisy).abs()[moving].mean() < 0.1 * NOISE
    # Still pixels move towards the noise-free upscale.
    assert (stable - clean).abs()[~moving].mean() < 0.6 * (noisy - clean).abs()[~moving].mean()


def test_a_flicker_free_upscale_is_left_nearly_as_it_was(upscaled):
    low, clean, _ = upscaled
    assert psnr(stabilize(low, clean), clean).min() > 45


def test_one_frame_or_zero_strength_is_a_copy(upscaled):
    low, _, noisy = upscaled
    assert torch.equal(stabilize(low[:1], noisy[:1]), noisy[:1])
    assert torch.equal(stabilize(low, noisy, strength=0.0), noisy)
    with pytest.raises(ValueError, match="16 input frames but 15 upscaled frames"):
        stabilize(low, noisy[:15])


def test_stillness_marks_changed_pixels_and_their_neighbours():
    before = torch.full((1, 3, 8, 8), 0.5)
    after = before.clone()
    after[0, 1, 4, 4] = 0.7                     # one input pixel changes
    still = stillness(before, after, (16, 16))
    assert still.shape == (1, 1, 16, 16)
    assert still[0, 0, 8:10, 8:10].max() < 1e-6  # the changed pixel
    # Its 3x3 neighbourhood (input pixels 3..5) counts as moving too: output 7 and 10 sample only those.
    assert still[0, 0, 7, 7] < 1e-6 and still[0, 0, 10, 10] < 1e-6 and still[0, 0, 7, 10] < 1e-6
    assert still[0, 0, :3, :3].min() == 1.0      # untouched far away
    small = before + 0.005                       # decoder-noise-sized change: mostly carried over
    assert 0.9 < stillness(before, small, (16, 16)).min() < 1.0


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
