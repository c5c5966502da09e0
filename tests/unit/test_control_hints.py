"""Which hint frames a context window's ControlNet gets (samplers/control_hints.py)."""
import pytest

from adlightning.samplers.control_hints import window_hint_indices


def test_one_hint_frame_per_latent_frame_gives_the_windows_own_frames():
    assert window_hint_indices(list(range(24, 40)), 40) == list(range(24, 40))
    assert window_hint_indices([30, 31, 0, 1], 32) == [30, 31, 0, 1]   # a looped window wraps like its latents


def test_a_shorter_hint_repeats_as_core_broadcasts_it():
    # core's broadcast_image_to tiles a 3-frame hint over 8 frames as 0 1 2 0 1 2 0 1; windows keep that per frame.
    whole = window_hint_indices(list(range(8)), 3)
    assert whole == [0, 1, 2, 0, 1, 2, 0, 1]
    assert window_hint_indices([4, 5, 6, 7], 3) == whole[4:]


def test_a_longer_hint_is_cut_as_core_cuts_it():
    assert window_hint_indices([0, 1, 2], 10) == [0, 1, 2]


def test_empty_hint_rejected():
    with pytest.raises(ValueError, match="at least one frame"):
        window_hint_indices([0, 1], 0)
