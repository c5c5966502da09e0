"""Device memory planning of Upscale Frames: batch size and whether the clip stays on the device."""
from adlightning.upscaling.budget import clip_bytes, plan, tile_bytes

GIB = 2 ** 30
CORE_FACTOR = 384   # core's upscale working-memory factor (nodes/comfy_compat.UPSCALE_MEMORY_FACTOR, canary-checked)


def core_estimate(side: int, scale: int) -> int:
    return tile_bytes(512, side, side, scale, CORE_FACTOR)


def test_clip_bytes_counts_input_and_upscaled_frames_in_float32():
    assert clip_bytes(2, 10, 20, (20, 40), stabilise=False) == 2 * 3 * (10 * 20 + 20 * 40) * 4
    assert clip_bytes(2, 10, 20, (20, 40), stabilise=True) == 2 * 3 * (10 * 20 + 2 * 20 * 40) * 4


def test_a_12_gb_card_keeps_32_frames_at_512_upscaled_2x_on_the_device():
    """Issue 9's small-GPU case: 32 frames at 512^2, 2x out of a 4x model, stabilised, about 11 GiB free after
    the model: the clip (0.9 GiB) stays on the device, one frame per call leaves the rest for its activations."""
    clip = clip_bytes(32, 512, 512, (1024, 1024), stabilise=True)
    assert clip < GIB
    per_frame = core_estimate(512, 4)
    batch, keep = plan(32, 11 * GIB, per_frame, clip, max_batch=8)
    assert (batch, keep) == (1, True)
    assert clip + batch * per_frame <= 0.8 * 11 * GIB


def test_a_big_card_batches_up_to_the_cap():
    clip = clip_bytes(16, 512, 512, (1024, 1024), stabilise=True)
    assert plan(16, 130 * GIB, core_estimate(512, 4), clip, max_batch=8) == (8, True)
    assert plan(3, 130 * GIB, core_estimate(512, 4), clip, max_batch=8) == (3, True)


def test_a_clip_that_does_not_fit_waits_on_the_host_and_still_runs():
    clip = clip_bytes(512, 512, 512, (2048, 2048), stabilise=True)     # 512 frames at 4x: 48 GiB
    batch, keep = plan(512, 11 * GIB, core_estimate(512, 4), clip, max_batch=8)
    assert (batch, keep) == (1, False)
    assert plan(512, 0, core_estimate(512, 4), clip, max_batch=8) == (1, False)   # never zero frames per call


def test_the_tile_estimate_is_for_the_tile_really_used():
    assert tile_bytes(512, 512, 512, 4, CORE_FACTOR) == 512 * 512 * 3 * 4 * 4 * 384     # core's figure for a 512 px tile
    assert tile_bytes(512, 64, 48, 4, CORE_FACTOR) == 64 * 64 * 3 * 4 * 4 * 384         # a small frame is one smaller tile
    assert tile_bytes(128, 512, 512, 2, CORE_FACTOR) == 128 * 128 * 3 * 4 * 2 * 384
