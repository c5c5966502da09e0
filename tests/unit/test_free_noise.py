"""FreeNoise initial noise (samplers/free_noise.py)."""
import torch

from adlightning.samplers.free_noise import free_noise
from adlightning.samplers.windows import WindowOptions, windows

STATIC = WindowOptions(schedule="static")


def noise_sources(frames: int, length: int, overlap: int, seed: int) -> list[int]:
    """Which original frame's noise each frame ends up with: FreeNoise run on the frame indices."""
    index = torch.arange(frames, dtype=torch.float64).view(frames, 1)
    return [int(v) for v in free_noise(index, length, overlap, seed).view(-1)]


def test_golden_sources_40_frames():
    # Static windows 0-15, 12-27, 24-39: frames 16-27 reuse 0-11 shuffled, frames 28-39 reuse 12-23 shuffled.
    assert noise_sources(40, 16, 4, seed=0) == [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        8, 0, 5, 9, 7, 4, 2, 10, 3, 1, 11, 6,
        14, 15, 10, 8, 13, 4, 5, 12, 0, 9, 7, 2]


def test_every_window_holds_a_permutation_of_the_first_windows_noise():
    for frames in (17, 29, 41, 64, 100):
        sources = noise_sources(frames, 16, 4, seed=3)
        for window in windows(frames, STATIC):
            assert sorted(sources[f] for f in window) == list(range(16)), (frames, window)


def test_clip_within_one_window_is_unchanged_and_input_untouched():
    noise = torch.randn(16, 4, 2, 2)
    assert torch.equal(free_noise(noise, 16, 4, seed=1), noise)
    long = torch.randn(40, 4, 2, 2)
    before = long.clone()
    out = free_noise(long, 16, 4, seed=1)
    assert torch.equal(long, before)
    assert torch.equal(out[:16], long[:16])
    assert not torch.equal(out[16:], long[16:])


def test_seed_decides_the_shuffle():
    assert noise_sources(64, 16, 4, seed=5) == noise_sources(64, 16, 4, seed=5)
    assert noise_sources(64, 16, 4, seed=5) != noise_sources(64, 16, 4, seed=6)
