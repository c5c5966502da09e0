"""Context-window lists and blend weights (samplers/windows.py): golden lists, edge cases, invariants."""
import argparse

import pytest
import torch

from dev.harness.reference import blend
from adlightning.samplers.windows import (FUSE_METHODS, SCHEDULES, ContextWindowError, WindowOptions, fuse_weights, looped_starts,
                              picture, static_starts, uniform_starts, van_der_corput, window_evaluations, windows)

STATIC = WindowOptions(schedule="static")


def starts_of(layout):
    return [w[0] for w in layout]


# --- golden lists -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frames, expected", [
    (17, [0, 1]),
    (20, [0, 4]),
    (28, [0, 12]),
    (40, [0, 12, 24]),
    (41, [0, 8, 17, 25]),       # spread evenly: overlaps 8, 7, 8 (not 4, 4, 15 with the last window pushed back)
    (64, [0, 12, 24, 36, 48]),
    (100, [0, 12, 24, 36, 48, 60, 72, 84]),
])
def test_static_golden(frames, expected):
    assert static_starts(frames, 16, 4) == expected
    layout = windows(frames, WindowOptions(schedule="static"))
    assert layout == [list(range(s, s + 16)) for s in expected]


def test_uniform_golden_64_frames():
    assert [uniform_starts(64, 16, 4, step) for step in range(4)] == [
        [0, 12, 24, 36, 48],          # shift 0
        [0, 6, 18, 30, 42, 48],       # shift 1/2 stride
        [0, 3, 15, 27, 39, 48],       # shift 1/4 stride
        [0, 9, 21, 33, 45, 48],       # shift 3/4 stride
    ]


def test_uniform_drops_a_window_its_neighbours_already_cover():
    # Shift 3 at 20 frames would give starts 0, 3, 4; windows 0 and 4 already share 12 >= 4 frames.
    assert uniform_starts(20, 16, 4, 2) == [0, 4]
    assert uniform_starts(30, 16, 12, 2) == [0, 1, 5, 9, 13, 14]


@pytest.mark.parametrize("frames, expected", [
    (17, [0, 9]),
    (20, [0, 10]),
    (40, [0, 10, 20, 30]),
    (41, [0, 10, 21, 31]),
    (64, [0, 11, 21, 32, 43, 53]),
])
def test_looped_golden(frames, expected):
    assert looped_starts(frames, 16, 4) == expected


def test_looped_windows_wrap_to_the_first_frames():
    layout = windows(40, WindowOptions(schedule="looped"))
    assert layout[-1] == list(range(30, 40)) + list(range(0, 6))
    assert layout[0] == list(range(0, 16))


def test_van_der_corput_prefix():
    assert [van_der_corput(n) for n in range(8)] == [0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875]


# --- edge cases ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("frames", [1, 8, 15, 16])
def test_clip_that_fits_is_one_window(schedule, frames):
    assert windows(frames, WindowOptions(schedule=schedule)) == [list(range(frames))]


@pytest.mark.parametrize("schedule, expected", [
    ("static", [list(range(0, 16)), list(range(1, 17))]),
    ("uniform", [list(range(0, 16)), list(range(1, 17))]),
    ("looped", [list(range(0, 16)), list(range(9, 17)) + list(range(0, 8))]),
])
def test_one_frame_past_the_length(schedule, expected):
    for step in range(4):
        assert windows(17, WindowOptions(schedule=schedule), step) == expected


@pytest.mark.parametrize("length, overlap", [(16, 16), (16, 17), (8, 100), (2, 2)])
def test_overlap_not_below_length_is_rejected(length, overlap):
    with pytest.raises(ContextWindowError, match=f"overlap {overlap} must be smaller than the context length "
                                                 f"{length}.*at most {length - 1}"):
        WindowOptions(length=length, overlap=overlap)


@pytest.mark.parametrize("kwargs, message", [
    ({"length": 1}, "context length must be at least 2 frames, got 1"),
    ({"overlap": -1}, "overlap must be 0 or more frames, got -1"),
    ({"schedule": "batched"}, "unknown context schedule 'batched'; choose one of static, uniform, looped"),
    ({"fuse": "relative"}, "unknown context fuse method 'relative'"),
    ({"noise": "mixed"}, "unknown context noise type 'mixed'"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ContextWindowError, match=message):
        WindowOptions(**kwargs)


def test_no_frames_is_an_error():
    with pytest.raises(ContextWindowError, match="at least one frame, got 0"):
        windows(0, WindowOptions())


# --- invariants over many sizes -----------------------------------------------------------------------------------

def neighbour_overlaps(layout, frames, looped):
    pairs = list(zip(layout, layout[1:])) + ([(layout[-1], layout[0])] if looped else [])
    return [len(set(a) & set(b)) for a, b in pairs]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("length, overlap", [(16, 4), (16, 0), (16, 8), (16, 15), (8, 2), (24, 6)])
def test_every_frame_covered_and_overlap_kept(schedule, length, overlap):
    opts = WindowOptions(length=length, overlap=overlap, schedule=schedule)
    for frames in range(length + 1, 4 * length + 3):
        for step in range(4):
            layout = windows(frames, opts, step)
            assert sorted(set(f for w in layout for f in w)) == list(range(frames))
            assert all(len(w) == length == len(set(w)) for w in layout)
            assert min(neighbour_overlaps(layout, frames, schedule == "looped")) >= overlap
            if schedule != "looped":
                assert starts_of(layout) == sorted(set(starts_of(layout)))
                assert layout[0][0] == 0 and layout[-1][-1] == frames - 1


def test_static_uses_as_few_windows_as_the_overlap_allows():
    # Minimum count n satisfies (n - 1) * stride >= frames - length.
    for frames in range(17, 200):
        n = len(windows(frames, STATIC))
        assert (n - 1) * 12 >= frames - 16 > (n - 2) * 12


def test_default_schedule_and_fuse_seam_least_at_the_default_overlap():
    """The defaults are dev/benchmarks/window_seams.py's pick: on its video prior with a known ideal denoiser, 4 Lightning
    steps of 64 frames with the default schedule and fuse method show the lowest seam ratio and the lowest worst seam
    of every schedule and fuse method at the default overlap, all within 1.15x the windows of static (README, "Why
    these defaults"; 1024 channels of one seed here, the README's 4096 x 4 only narrow the spread)."""
    from dev.benchmarks.window_seams import measure
    args = argparse.Namespace(frames=64, channels=1024, seeds=1, scene=0.5, motion=4.0, causal=False)
    settings = [WindowOptions(schedule=schedule, fuse=fuse) for schedule in ("static", "uniform")
                for fuse in FUSE_METHODS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # the tensors are tiny: on a busy machine intra-op threads make it 100x slower
    try:
        rows = dict(zip(settings, measure(args, False, settings)[1:]))   # [0]: the whole clip as one window
    finally:
        torch.set_num_threads(threads)
    best, others = rows.pop(WindowOptions()), rows.values()
    assert best["seam"] < min(r["seam"] for r in others), (best, list(others))
    assert best["peak"] < min(r["peak"] for r in others), (best, list(others))
    assert max(r["windows"] for r in others) <= best["windows"] <= 1.15 * min(r["windows"] for r in others)


def test_window_evaluations_count_every_step():
    assert window_evaluations(64, WindowOptions(schedule="uniform"), 4) == [5, 6, 6, 6]
    assert window_evaluations(64, STATIC, 4) == [5, 5, 5, 5]
    assert window_evaluations(16, STATIC, 4) == [1, 1, 1, 1]


# --- fuse weights -------------------------------------------------------------------------------------------------

def test_pyramid_and_flat_golden():
    layout = windows(20, STATIC)
    assert [w.tolist() for w in fuse_weights("pyramid", layout)] == [
        [1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1]] * 2
    assert [w.tolist() for w in fuse_weights("flat", layout)] == [[1.0] * 16] * 2
    odd = fuse_weights("pyramid", windows(9, WindowOptions(length=5, overlap=1)))
    assert [w.tolist() for w in odd] == [[1, 2, 3, 2, 1]] * 2


def test_overlap_linear_golden_crossfade():
    first, second = fuse_weights("overlap-linear", windows(28, STATIC))   # windows 0-15 and 12-27
    assert torch.allclose(first, torch.tensor([1.0] * 12 + [0.8, 0.6, 0.4, 0.2]))
    assert torch.allclose(second, torch.tensor([0.2, 0.4, 0.6, 0.8] + [1.0] * 12))


def raw_weight_sums(layout, weights, frames):
    total = torch.zeros(frames)
    for window, w in zip(layout, weights):
        total[torch.tensor(window)] += w
    return total


@pytest.mark.parametrize("schedule", ["static", "looped"])
@pytest.mark.parametrize("frames", [17, 20, 40, 41, 64, 100])
def test_overlap_linear_raw_weights_sum_to_one(schedule, frames):
    # Static and looped layouts never put a frame in three windows, so the ramps are exact crossfades.
    layout = windows(frames, WindowOptions(schedule=schedule))
    assert torch.bincount(torch.tensor([f for w in layout for f in w])).max() <= 2
    total = raw_weight_sums(layout, fuse_weights("overlap-linear", layout), frames)
    assert torch.allclose(total, torch.ones(frames)), total


def test_overlap_linear_crossfades_each_neighbour_separately():
    # Uniform step 4 at 41 frames: starts 0, 9, 21, 25. Window 21-36 shares 4 frames with 9-24 and 12 with 25-40;
    # it ramps in over the 4 and out over the 12, so both crossfades still sum to 1.
    layout = windows(41, WindowOptions(schedule="uniform"), 3)
    assert [w[0] for w in layout] == [0, 9, 21, 25]
    weights = fuse_weights("overlap-linear", layout)
    assert torch.allclose(weights[2][:5], torch.tensor([0.2, 0.4, 0.6, 0.8, 12 / 13]))
    assert torch.allclose(raw_weight_sums(layout, weights, 41), torch.ones(41))


@pytest.mark.parametrize("method", FUSE_METHODS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_blend_is_a_weighted_mean(method, schedule):
    """Weights are all positive and, normalised per frame, sum to 1: blending a constant gives the constant back,
    and blending window-specific constants lands between them in the shared frames."""
    frames = 41
    for step in range(4):
        layout = windows(frames, WindowOptions(schedule=schedule, fuse=method), step)
        weights = fuse_weights(method, layout)
        assert all((w > 0).all() for w in weights)
        ones = blend(frames, layout, weights, [torch.full((16, 2), 3.0) for _ in layout])
        assert torch.allclose(ones, torch.full((frames, 2), 3.0))
        ids = blend(frames, layout, weights, [torch.full((16, 1), float(k)) for k in range(len(layout))])
        assert ids.min() >= 0 and ids.max() <= len(layout) - 1


def test_blend_golden_two_windows():
    layout = windows(20, STATIC)   # 0-15 and 4-19; frames 4-15 shared
    preds = [torch.zeros(16, 1), torch.ones(16, 1)]
    flat = blend(20, layout, fuse_weights("flat", layout), preds).view(-1)
    assert flat.tolist() == [0.0] * 4 + [0.5] * 12 + [1.0] * 4
    pyramid = blend(20, layout, fuse_weights("pyramid", layout), preds).view(-1)
    # Frame 4: window 0 position 4 (weight 5), window 1 position 0 (weight 1) -> 1/6; frame 9: weights 7 and 6.
    assert pyramid[4].item() == pytest.approx(1 / 6)
    assert pyramid[9].item() == pytest.approx(6 / 13)
    assert pyramid[15].item() == pytest.approx(5 / 6)       # window 0 position 15 (1), window 1 position 11 (5)
    assert (pyramid[1:] >= pyramid[:-1]).all()
    linear = blend(20, layout, fuse_weights("overlap-linear", layout), preds).view(-1)
    assert torch.allclose(linear, torch.tensor([0.0] * 4 + [(i + 1) / 13 for i in range(12)] + [1.0] * 4))


def test_picture_golden():
    assert picture(20, STATIC) == (
        "static schedule, 20 frames, length 16, overlap 4\n"
        "################....\n"
        "....################")
