"""Temporal stabilisation on synthetic clips, measured with metrics/flicker.py."""
import pytest
import torch
import torch.nn.functional as F

from adlightning.metrics.flicker import flicker_index, psnr
from adlightning.upscaling.temporal_stabilize import stabilize, stillness
from dev.harness.upscale_files import load_release, moving_clip

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
