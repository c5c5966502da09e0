"""The tiler on its own: geometry, exactness for a model whose receptive field fits the overlap, OOM back-off,
interrupts and progress."""
import pytest
import torch
import torch.nn.functional as F

from adlightning.upscaling.tiles import TiledUpscaler, TileOOMError, fade, grid, spans, tiled_apply


class LocalUpscaler(torch.nn.Module):
    """Nearest 2x upsample after `depth` random 3x3 convs: receptive-field radius exactly `depth` input pixels, and
    every pixel of it matters (no decay), so any tiling mistake shows."""

    def __init__(self, depth: int = 3, scale: int = 2, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weights = [torch.randn(3, 3, 3, 3, generator=gen) * 0.3 for _ in range(depth)]
        self.scale = scale

    def forward(self, x):
        for w in self.weights:
            x = torch.tanh(F.conv2d(x, w, padding=1)) + x
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


@pytest.mark.parametrize("length,tile,overlap,align", [
    (100, 32, 8, 1), (101, 32, 8, 4), (77, 40, 16, 2), (64, 64, 8, 1), (30, 64, 8, 1), (129, 33, 0, 1),
])
def test_spans_cover_with_overlap_on_the_aligned_grid(length, tile, overlap, align):
    cuts = spans(length, tile, overlap, align)
    assert cuts[0][0] == 0 and cuts[-1][1] == length
    for (s0, e0), (s1, e1) in zip(cuts, cuts[1:]):
        assert s1 % align == 0
        assert s0 < s1 and e0 - s1 >= overlap          # neighbours share at least `overlap` pixels
    assert len(cuts) == (1 if tile >= length else -(-(length - overlap) // (tile - overlap)))
    assert all(e - s <= max(tile, length if tile >= length else 0) + align - 1 for s, e in cuts)
    if tile >= length:
        assert cuts == [(0, length)]


def test_fades_of_a_row_of_tiles_never_leave_a_pixel_uncovered():
    length, tile, overlap, scale = 150, 48, 20, 3
    total = torch.zeros(length * scale)
    for s, e in spans(length, tile, overlap):
        w = fade((s, e), length, overlap, scale)
        assert w.shape == ((e - s) * scale,)
        margin = overlap // 4 * scale
        if s > 0:
            assert w[:margin].max() == 0        # the outer quarter-overlap of a tile is never used
        if e < length:
            assert w[-margin:].max() == 0
        total[s * scale:e * scale] += w
    assert total.min() >= 1.0 - 1e-6


@pytest.mark.parametrize("frames,height,width,tile,overlap", [
    (1, 37, 53, 24, 12),     # odd sizes, 3 x 4 tiles
    (16, 29, 31, 24, 12),    # a 16-frame batch in one call per tile
    (2, 40, 40, 64, 12),     # frame smaller than the tile: one tile
])
def test_tiled_equals_whole_frame_when_the_receptive_field_fits(frames, height, width, tile, overlap):
    model = LocalUpscaler(depth=3)       # radius 3 = overlap // 4
    x = torch.rand(frames, 3, height, width, generator=torch.Generator().manual_seed(1))
    whole = model(x)
    tiled = tiled_apply(x, model, 2, tile, overlap)
    assert tiled.shape == (frames, 3, height * 2, width * 2)
    assert (tiled - whole).abs().max() < 1e-5


def test_too_small_an_overlap_shows_seams():
    """The exactness above is the overlap's doing: with a wider receptive field the same grid no longer matches."""
    model = LocalUpscaler(depth=8)
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    assert (tiled_apply(x, model, 2, 24, 12) - model(x)).abs().max() > 1e-2


def test_a_model_returning_the_wrong_size_is_reported():
    with pytest.raises(ValueError, match=r"expected 1 frames of 32x32 \(scale 2\)"):
        tiled_apply(torch.rand(1, 3, 16, 16), lambda t: t, 2, 64, 8)


class Recorder:
    """An upscaler that runs out of memory above a budget of frames x tile pixels, and records what it was given."""

    def __init__(self, budget: int):
        self.budget = budget
        self.shapes = []
        self.model = LocalUpscaler(depth=2)

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        if x.shape[0] * x.shape[2] * x.shape[3] > self.budget:
            raise torch.OutOfMemoryError("fake")
        return self.model(x)


def test_oom_halves_the_frame_batch_then_the_tile_and_keeps_the_result():
    x = torch.rand(6, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    fn = Recorder(budget=24 * 24 + 1)
    backoffs, progress = [], []
    up = TiledUpscaler(fn, 2, tile=64, overlap=8, frame_batch=4, min_tile=16,
                       on_oom=lambda t, b: backoffs.append((t, b)),
                       on_progress=lambda done, total: progress.append((done, total)))
    result = up(x)
    # 4 frames of 48 -> 2 -> 1 frame, then the tile: 48 (the frame) -> 24.
    assert backoffs == [(64, 2), (64, 1), (24, 1)]
    assert (up.tile, up.frame_batch) == (24, 1)
    assert (result - fn.model(x)).abs().max() < 1e-5
    assert max(b * h * w for b, _, h, w in fn.shapes[-9:]) <= fn.budget
    per_frame = len(grid(48, 48, 24, 8))
    assert progress[-1] == (6 * per_frame, 6 * per_frame)
    dones = [d for d, _ in progress if _ == 6 * per_frame]
    assert dones == sorted(dones)


def test_oom_at_the_floor_is_a_clear_error():
    fn = Recorder(budget=100)
    up = TiledUpscaler(fn, 2, tile=64, overlap=8, min_tile=32)
    with pytest.raises(TileOOMError, match=r"out of memory upscaling one 48x40 frame even in 32 px tiles") as err:
        up(torch.rand(1, 3, 40, 48))
    assert isinstance(err.value.__cause__, torch.OutOfMemoryError)
    assert [s[2:] for s in fn.shapes] == [(40, 48), (32, 32)]   # whole frame, then the floor (48 // 2 < 32)


class Stop(Exception):
    pass


def test_interrupt_stops_between_tiles_and_is_not_taken_for_oom():
    fn = Recorder(budget=10**9)
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Stop()

    up = TiledUpscaler(fn, 2, tile=16, overlap=4, check=check, is_oom=lambda e: True)
    with pytest.raises(Stop):
        up(torch.rand(2, 3, 40, 40))
    assert len(fn.shapes) == 2


def test_other_errors_propagate_without_retry():
    def broken(x):
        raise RuntimeError("boom")

    backoffs = []
    up = TiledUpscaler(broken, 2, tile=16, overlap=4, on_oom=lambda t, b: backoffs.append(t))
    with pytest.raises(RuntimeError, match="boom"):
        up(torch.rand(1, 3, 40, 40))
    assert backoffs == []
