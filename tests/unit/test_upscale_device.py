"""The device pipeline (tiles, blend, resize and stabilisation where the model runs, optional half precision) gives
the pre-device pipeline's pictures: kept in tests/unit/upscale_reference.py and compared here on CPU."""
import pytest
import torch

from dev.harness.upscale_files import load_release
from tests.unit import upscale_reference as reference
from adlightning.upscaling.temporal_stabilize import stabilize
from adlightning.upscaling.upscale_models import compute_dtype, upscale_frames

ONE_LEVEL = 1 / 255


def frames(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth colour fields with fine texture and a patch that moves, so stabilisation has still and moving parts."""
    gen = torch.Generator().manual_seed(seed)
    smooth = torch.rand(1, 3, height // 6 + 2, width // 6 + 2, generator=gen)
    smooth = torch.nn.functional.interpolate(smooth, size=(height, width), mode="bilinear", align_corners=False)
    clip = (0.9 * smooth + 0.1 * torch.rand(1, 3, height, width, generator=gen)).repeat(count, 1, 1, 1)
    clip += ONE_LEVEL * torch.randn(clip.shape, generator=gen)        # decoder-like noise
    patch = torch.rand(3, height // 4, width // 4, generator=gen)
    for t in range(count):
        clip[t, :, 2:2 + patch.shape[1], 1 + t:1 + t + patch.shape[2]] = patch
    return clip.clamp(0, 1).movedim(1, -1)


def levels(image: torch.Tensor) -> torch.Tensor:
    """The 8-bit values a save node writes."""
    return (image * 255).round()


CASES = [  # model, its overrides, frames, size, scale, tile, overlap, frame batch, stabilise
    ("realesr-animevideov3.pth", {"num_conv": 4}, 5, (37, 45), 2.0, 24, 16, 2, True),      # 2x of 4x, 2x2 tiles
    ("RealESRGAN_x4plus.pth", {"num_blocks": 1}, 3, (29, 33), 0.0, 20, 8, 3, True),         # native 4x, 2x2 tiles
    ("RealESRGAN_x2plus.pth", {"num_blocks": 1}, 4, (33, 45), 1.5, 24, 16, 1, True),        # unshuffle, align 4
    ("realesr-general-x4v3.pth", {"num_conv": 2}, 3, (24, 28), 2.0, 512, 32, 3, False),     # one whole-frame tile
]


@pytest.mark.parametrize("name,overrides,count,size,scale,tile,overlap,batch,stable", CASES)
def test_device_pipeline_equals_the_previous_one(name, overrides, count, size, scale, tile, overlap, batch, stable):
    model = load_release(name, **overrides)
    images = frames(count, *size)
    expected = reference.upscale_frames(images, model, scale, tile, overlap, stable, frame_batch=batch)
    out = upscale_frames(images, model, scale=scale, tile=tile, overlap=overlap, temporal_stabilize=stable,
                         frame_batch=batch, device=torch.device("cpu"), store=torch.device("cpu"))
    assert out.shape == expected.shape and out.dtype == torch.float32
    assert expected.std() > 0.05
    assert (out - expected).abs().max() < 1e-5
    assert (levels(out) - levels(expected)).abs().max() <= 1


@pytest.mark.parametrize("name,overrides", [("realesr-animevideov3.pth", {"num_conv": 4}),
                                            ("RealESRGAN_x4plus.pth", {"num_blocks": 1})])
def test_half_precision_stays_within_8_bit_rounding_and_leaves_the_model_alone(name, overrides):
    """float16 under autocast (what the node picks on CUDA), run here on CPU."""
    model = load_release(name, **overrides)
    images = frames(3, 24, 28)
    expected = reference.upscale_frames(images, model, 2.0, 16, 8, True)
    out = upscale_frames(images, model, scale=2.0, tile=16, overlap=8, dtype=torch.float16)
    assert out.dtype == torch.float32
    assert (levels(out) - levels(expected)).abs().max() <= 1
    assert (out - expected).abs().mean() < 0.1 * ONE_LEVEL
    assert {p.dtype for p in model.model.parameters()} == {torch.float32}, "the shared model must not be cast"


def test_stabilisation_on_another_device_than_the_frames_gives_the_same_frames():
    """`device` only says where the arithmetic runs; on CPU for both it must be the plain result."""
    low = frames(4, 12, 14).movedim(-1, 1)
    high = torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")
    high = (high + 0.02 * torch.randn(high.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert torch.equal(stabilize(low, high, device=torch.device("cpu")), reference.stabilize(low, high))


def test_compute_dtype_follows_what_the_model_and_the_device_support():
    model = load_release("realesr-animevideov3.pth", num_conv=1)
    assert model.supports_half and model.supports_bfloat16
    assert compute_dtype(model, half=True, bfloat16=True) == torch.float16
    assert compute_dtype(model, half=False, bfloat16=True) == torch.bfloat16
    assert compute_dtype(model, half=False, bfloat16=False) is None
