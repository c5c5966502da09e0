"""Clip metrics (metrics/flow.py, sharpness.py, fidelity.py, clip_report.py) on synthetic clips whose answer is known:
a still clip, a pure translation by k px, and a still clip with added per-frame noise (flicker)."""
import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("cv2", reason="the flow metrics need opencv-python-headless (tests/requirements.txt)")

from adlightning.metrics.clip_report import evaluate_clip, format_table  # noqa: E402
from adlightning.metrics.fidelity import ssim, temporal_psnr  # noqa: E402
from adlightning.metrics.flicker import detail_flicker  # noqa: E402
from adlightning.metrics.flow import flow_stats  # noqa: E402
from adlightning.metrics.sharpness import laplacian_variance  # noqa: E402

NOISE = 0.03


def _texture() -> torch.Tensor:
    """A smooth random texture in [0, 1], 160 px square: detail everywhere (flow is defined), no aliasing."""
    big = F.avg_pool2d(torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(0)), 5, 1, 2)
    return (big - big.min()) / (big.max() - big.min())


def translation(k: int, frames: int = 6, size: int = 64) -> torch.Tensor:
    """A 64 px window sliding k px right per frame over the texture: content moves k px left each frame."""
    big = _texture()
    return torch.cat([big[:, :, 20:20 + size, 20 + k * t:20 + k * t + size] for t in range(frames)])


def test_a_still_clip_has_no_motion_no_warp_error_and_no_flicker():
    stats = flow_stats(translation(0))
    # identical frames: Farneback returns ~1e-3 px of numerical flow, which costs ~4e-5 of bilinear resampling error
    assert stats.motion < 0.01
    assert stats.warp_error < 1e-3
    assert stats.reliable > 0.95
    assert detail_flicker(translation(0)) == 0.0


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_a_pure_translation_moves_k_px_and_the_flow_explains_it(k):
    stats = flow_stats(translation(k))
    # sub-pixel accuracy of Farneback on a smooth texture (measured error <= 0.006 px; 8-bit grey input)
    assert stats.motion == pytest.approx(k, abs=0.05)
    # everything is explained by the motion: what is left is bilinear resampling of a slightly-off flow (~2.5e-4 per
    # px of motion), a tenth of what the noise test's flicker gives
    assert stats.warp_error < 0.003
    # the strip that enters at the edge has no source: k/64 of the pixels must fail the check, not much more
    assert 1 - k / 64 - 0.05 < stats.reliable <= 1 - k / 64 + 0.02


def test_added_flicker_raises_warp_error_and_detail_flicker_but_not_motion():
    still = translation(0)
    noisy = (still + NOISE * torch.randn(still.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    stats = flow_stats(noisy)
    assert stats.motion < 0.2          # per-frame noise moves nothing; Farneback's 15 px window averages it out
    # the flow is ~0, so the warp error is E|n1 - n0| for independent N(0, s^2) noise: 2 s / sqrt(pi)
    assert stats.warp_error == pytest.approx(2 * NOISE / math.sqrt(math.pi), rel=0.1)
    assert detail_flicker(noisy) > 0.02 > detail_flicker(still)


def test_sharpness_of_stripes_is_known_and_blur_lowers_it():
    # columns alternating 0 and 1: the 4-neighbour Laplacian is 2 - 4v, i.e. +-2 on [0, 1], +-510 on 0-255 -> var 510^2
    stripes = (torch.arange(8) % 2).float().view(1, 1, 1, 8).expand(2, 3, 8, 8)
    assert laplacian_variance(stripes).tolist() == pytest.approx([510.0 ** 2] * 2)
    assert laplacian_variance(torch.full((1, 3, 8, 8), 0.5)).item() == 0.0
    clip = translation(0, frames=2)
    blurred = F.avg_pool2d(clip, 3, 1, 1)
    assert (laplacian_variance(blurred) < 0.5 * laplacian_variance(clip)).all()
    with pytest.raises(ValueError, match="3x3"):
        laplacian_variance(torch.zeros(1, 3, 2, 8))


def test_fidelity_against_a_reference():
    clip = translation(2)
    assert ssim(clip, clip).tolist() == pytest.approx([1.0] * 6)
    assert temporal_psnr(clip, clip) == math.inf
    # a uniform offset c: every frame is off by c, so PSNR = 10 log10(1 / c^2) = 20 dB for c = 0.1, but every frame
    # changes exactly as the reference does, so the PSNR of the frame changes is float-rounding high (> 120 dB)
    half = clip * 0.5
    result = evaluate_clip(half + 0.1, half)
    assert result["psnr"] == pytest.approx(20.0, abs=1e-4) and result["psnr_min"] == pytest.approx(20.0, abs=1e-4)
    assert result["temporal_psnr"] > 120
    # a contrast change lowers SSIM below 1 but not to 0
    assert 0.5 < ssim(clip * 0.5 + 0.25, clip).mean() < 0.99


def test_the_report_has_every_row_and_names_bad_input():
    clip = translation(1)
    alone = evaluate_clip(clip)
    assert set(alone) == {"frames", "motion_px", "warp_error", "flow_reliable", "detail_flicker", "sharpness",
                          "sharpness_min"}
    assert alone["frames"] == 6 and alone["motion_px"] == pytest.approx(1.0, abs=0.05)
    both = evaluate_clip(clip, clip)
    assert both["flicker_index"] == pytest.approx(detail_flicker(clip) / max(
        (clip[1:] - clip[:-1]).abs().mean().item(), 1e-3), rel=1e-4)
    table = format_table(both)
    assert "motion amplitude" in table and "PSNR vs reference, mean" in table and " inf " in table
    with pytest.raises(ValueError, match="at least 2 frames"):
        evaluate_clip(clip[:1])
    with pytest.raises(ValueError, match="reference clip must match"):
        evaluate_clip(clip, clip[:4])


def test_missing_opencv_is_a_clear_error(monkeypatch):
    # ComfyUI does not ship OpenCV: the pack must import without it and say how to install it when a flow is asked for
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)        # makes `import cv2` raise ImportError
    with pytest.raises(ImportError, match="pip install opencv-python-headless"):
        flow_stats(translation(1, frames=2))
