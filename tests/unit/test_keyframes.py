"""Keyframe pinning without ComfyUI: positions, strengths, the mask, the start latents, and the reference Euler
sampler that mirrors core's per-step pinning (tests/host/test_keyframes_host.py holds the real sampler to it)."""
from __future__ import annotations

import pytest
import torch

from dev.harness.reference import sqrt_linear_sigmas
from adlightning.samplers import keyframes as kf
from adlightning.samplers.schedules import denoise_steps, sigmas_for

FRAMES = 8
SHAPE = (FRAMES, 4, 6, 5)
SCALE = 0.18215


@pytest.fixture(scope="module")
def table():
    return sqrt_linear_sigmas()


def toy_model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A denoiser that mixes frames (as a motion module would), so a pinned frame's content reaches the free ones."""
    mixed = 0.5 * x + 0.25 * torch.roll(x, 1, 0) + 0.25 * torch.roll(x, -1, 0)
    return torch.tanh(mixed / (1.0 + sigma)) * 0.8


def source_latent(seed: int = 3) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def noise_for(seed: int = 11) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("text,expected", [
    ("0", [0]), ("-1", [15]), ("first", [0]), ("last", [15]), ("50%", [8]), ("0%, 100%", [0, 15]),
    ("first, 7, last", [0, 7, 15]), (" 3 ,-2", [3, 14]), ("LAST", [15]), ("33.3%", [5]),
])
def test_positions(text, expected):
    assert kf.parse_positions(text, 16) == expected


@pytest.mark.parametrize("text,needle", [
    ("16", "keyframe 1 ('16') is at frame 16, past the clip: the clip has 16 frames"),
    ("0, 20", "keyframe 2 ('20') is at frame 20, past the clip: the clip has 16 frames"),
    ("-17", "keyframe 1 ('-17') is at frame -17, past the clip: the clip has 16 frames"),
    ("150%", "keyframe 1 ('150%') is past the end of the clip"),
    ("middle", "keyframe 1 ('middle') is not a position"),
    ("0, first", "keyframes 1 and 2 are both at frame 0"),
    ("", "no keyframe positions"),
])
def test_bad_positions_are_refused_naming_the_keyframe(text, needle):
    with pytest.raises(kf.KeyframeError) as info:
        kf.parse_positions(text, 16)
    assert needle in str(info.value)
    assert type(info.value).__module__ == "builtins"


def test_strengths():
    assert kf.parse_strengths("1.0", 3) == [1.0, 1.0, 1.0]
    assert kf.parse_strengths("1, 0.5", 2) == [1.0, 0.5]
    assert kf.parse_strengths("", 2) == [1.0, 1.0]
    for text, needle in (("1, 0.5, 0.2", "3 strengths for 2 keyframes"), ("1.5", "outside 0-1"),
                         ("x", "not numbers")):
        with pytest.raises(kf.KeyframeError, match=needle):
            kf.parse_strengths(text, 2)


def test_mask_and_start_latents():
    mask = kf.frame_mask(6, [0, 5], [1.0, 0.25])
    assert mask.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.75]
    spatial = kf.spatial_mask(mask, 3, 2)
    assert spatial.shape == (6, 1, 3, 2) and spatial[5].unique().tolist() == [0.75]
    keys = torch.stack([torch.full((4, 3, 2), 1.0), torch.full((4, 3, 2), 2.0)])
    noise_init = kf.pinned_latent(keys, 6, [0, 5], [1.0, 0.0], "noise")
    assert [float(f.mean()) for f in noise_init] == [1.0, 0, 0, 0, 0, 0]   # strength 0 leaves its frame empty
    image_init = kf.pinned_latent(keys, 6, [0, 5], [1.0, 0.0], "image")
    assert [float(f.mean()) for f in image_init] == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    assert kf.image_for_keyframe(1, 3) == [0, 0, 0]
    with pytest.raises(kf.KeyframeError, match="2 images for 3 keyframe positions"):
        kf.image_for_keyframe(2, 3)


def test_loop_layout_pins_the_first_frame_again_after_the_last():
    assert kf.loop_layout(16, [0, 8], [1.0, 0.5]) == ([0, 8, 16], [1.0, 0.5, 1.0])
    with pytest.raises(kf.KeyframeError, match="give a keyframe at 'first'"):
        kf.loop_layout(16, [3], [1.0])


def test_extend_latent_and_batch_index():
    video = torch.arange(16.0).reshape(16, 1, 1, 1).expand(16, 4, 2, 2)
    out = kf.extend_latent(video, 4, 16)
    assert out.shape == (16, 4, 2, 2)
    assert torch.equal(out[:4], video[-4:]) and not out[4:].any()
    last = kf.extend_latent(video, 4, 16, "last_frame")
    assert torch.equal(last[4:], video[-1:].expand(12, 4, 2, 2))
    assert not kf.extend_latent(video, 4, 16, "noise", 0.0).any()   # strength 0: a plain text-to-video chunk
    assert torch.equal(kf.extend_latent(video, 4, 16, "last_frame", 0.0), last)
    assert kf.chunk_batch_index(0, 16, 4, 16) == list(range(12, 28))
    assert kf.chunk_batch_index(12, 16, 4, 16) == list(range(24, 40))   # the client's chunk 2 (first_frame 12)
    for args, needle in (((16, 16, 16), "leaves no new frames"), ((3, 4, 16), "more than the video's 3 frames"),
                         ((16, 0, 16), "at least 1")):
        with pytest.raises(kf.KeyframeError, match=needle):
            kf.check_extend(*args)


def grid():
    """Every step count 1-8 of the trailing grid, each at full denoise and at every denoise on its grid."""
    for steps in range(1, 9):
        for n in range(1, steps + 1):
            yield steps, n / steps


@pytest.mark.parametrize("steps,denoise", list(grid()))
def test_strength_one_keeps_the_source_latent(table, steps, denoise):
    sigmas = sigmas_for("trailing", table, steps, denoise)
    assert len(sigmas) == denoise_steps(steps, denoise) + 1
    source = source_latent()
    positions = [0, FRAMES - 1]
    mask = kf.frame_mask(FRAMES, positions, [1.0, 1.0])
    init = "noise" if denoise == 1.0 else "image"
    latent = kf.pinned_latent(source[positions], FRAMES, positions, [1.0, 1.0], init)
    spatial = kf.spatial_mask(mask, 6, 5)
    core = kf.euler_reference(toy_model, noise_for(), sigmas, latent, spatial, sigma_max=float(table[-1]), scale=SCALE)
    # Core's formula alone lands on the source to float rounding: the last step is x - (x - latent), |x| up to the
    # first sigma times the noise, then divided by the latent format's scale.
    rounding = torch.finfo(torch.float32).eps * float(sigmas[0] * 4 + 4) / SCALE
    out = kf.keep_pinned(core, latent, spatial)   # what the pack's sampler returns
    for index in positions:
        assert (core[index] - source[index]).abs().max() <= max(1e-5, rounding)
        assert (out[index] - source[index]).abs().max() <= 1e-5
        assert torch.equal(out[index], source[index])
    assert torch.equal(out[1:-1], core[1:-1])
    assert (out[1:-1] - latent[1:-1]).abs().max() > 1e-2   # the free frames were sampled


@pytest.mark.parametrize("steps", [1, 4, 8])
@pytest.mark.parametrize("denoise", [1.0, 0.5])
def test_strength_zero_equals_the_unpinned_run_bit_for_bit(table, steps, denoise):
    sigmas = sigmas_for("trailing", table, steps, denoise)
    source = source_latent()
    init = "noise" if denoise == 1.0 else "image"
    latent = kf.pinned_latent(source[[0]], FRAMES, [0], [0.0], init)
    if init == "noise":
        assert not latent.any()   # the same empty latent a text-to-video run starts from
    mask = kf.spatial_mask(kf.frame_mask(FRAMES, [0], [0.0]), 6, 5)
    pinned = kf.euler_reference(toy_model, noise_for(), sigmas, latent, mask, float(table[-1]), SCALE)
    plain = kf.euler_reference(toy_model, noise_for(), sigmas, latent, None, float(table[-1]), SCALE)
    assert torch.equal(pinned, plain)
    assert torch.equal(kf.keep_pinned(pinned, latent, mask), plain)


def test_keep_pinned_leaves_other_masks_alone():
    out, latent = torch.randn(4, 4, 6, 5), torch.randn(4, 4, 6, 5)
    assert kf.keep_pinned(out, latent, None) is out
    assert kf.keep_pinned(out, latent, torch.zeros(4, 1, 48, 40)) is out   # a pixel-size mask (SetLatentNoiseMask)
    assert kf.keep_pinned(out, latent, torch.ones(4, 1, 6, 5)) is out
    half = torch.ones(4, 1, 6, 5)
    half[1] = 0
    kept = kf.keep_pinned(out, latent, half)
    assert torch.equal(kept[1], latent[1]) and torch.equal(kept[[0, 2, 3]], out[[0, 2, 3]])


def test_partial_strength_stays_between(table):
    sigmas = sigmas_for("trailing", table, 4)
    source = source_latent()
    errors = []
    for strength in (0.0, 0.5, 0.9, 1.0):
        latent = kf.pinned_latent(source[[0]], FRAMES, [0], [strength], "noise")
        mask = kf.frame_mask(FRAMES, [0], [strength])
        out = kf.euler_reference(toy_model, noise_for(), sigmas, latent, mask, float(table[-1]), SCALE)
        errors.append(float((out[0] - source[0]).abs().mean()))
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] <= 1e-5


def test_pinning_reaches_the_free_frames(table):
    """Through the frame-mixing toy model the pinned frame changes its neighbour (the motion module's job)."""
    sigmas = sigmas_for("trailing", table, 4)
    source = source_latent()
    latent = kf.pinned_latent(source[[0]], FRAMES, [0], [1.0], "noise")
    mask = kf.frame_mask(FRAMES, [0], [1.0])
    pinned = kf.euler_reference(toy_model, noise_for(), sigmas, latent, mask, float(table[-1]), SCALE)
    plain = kf.euler_reference(toy_model, noise_for(), sigmas, torch.zeros(SHAPE), None, float(table[-1]), SCALE)
    assert (pinned[1] - plain[1]).abs().max() > 1e-3
