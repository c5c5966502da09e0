"""Tiled, batched application of an image-to-image upscaler to a stack of frames (pure torch).

Tiles overlap and are cross-faded in the overlap. The fade keeps every tile's outer quarter-overlap at weight zero, so
an output pixel only comes from tiles that saw at least overlap/4 input pixels of context around it: for a model whose
receptive field is no wider than that, the tiled result equals the whole-frame result up to float rounding, and for
wider ones (deep RRDBs) the seams are faded over overlap/2 instead of cut.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

DEFAULT_MIN_TILE = 64


class TileOOMError(RuntimeError):
    """Out of memory even at the smallest tile and one frame per batch."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


@dataclass(frozen=True)
class TileGrid:
    """How one frame is cut: input-pixel spans [start, end) per axis."""
    rows: list[tuple[int, int]]
    cols: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)


def spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Spans of about `tile` pixels covering [0, length), neighbours sharing at least `overlap`.

    Starts are multiples of `align`, so a model that pixel-unshuffles or pads to a multiple sees every tile on the same
    pixel grid as the whole frame. The last span is pinned to the end and may be up to align-1 longer than `tile`.
    """
    if tile >= length:
        return [(0, length)]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, step))
    last = (length - tile) // align * align
    if not starts or last > starts[-1]:
        starts.append(last)
    return [(s, min(s + tile, length)) for s in starts[:-1]] + [(starts[-1], length)]


def grid(height: int, width: int, tile: int, overlap: int, align: int = 1) -> TileGrid:
    return TileGrid(spans(height, tile, overlap, align), spans(width, tile, overlap, align))


def fade(span: tuple[int, int], length: int, overlap: int, scale: int) -> torch.Tensor:
    """Output-pixel weights of one span: 0 within overlap/4 of an edge it shares with a neighbour, rising linearly to
    1 at 3/4 of the overlap. Edges on the frame border keep weight 1 (the whole-frame model sees that border too)."""
    start, end = span
    margin = overlap // 4
    ramp = max(overlap - 2 * margin, 1)
    centres = (torch.arange((end - start) * scale, dtype=torch.float64) + 0.5) / scale + start
    inf = torch.full_like(centres, float("inf"))
    from_start = centres - start if start > 0 else inf
    from_end = end - centres if end < length else inf
    distance = torch.minimum(from_start, from_end)
    return ((distance - margin) / ramp).clamp(0, 1).float()


def capped_overlap(tile: int, overlap: int) -> int:
    """At most half the tile: more would cut a frame into ever more tiles as the tile shrinks on OOM."""
    return min(overlap, tile // 2)


def tiled_apply(frames: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], scale: int, tile: int,
                overlap: int, align: int = 1, device: torch.device | None = None,
                on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """fn over every tile of `frames` (N, C, H, W), all N frames of a tile in one call; returns (N, C', H*s, W*s)
    float32 on `device` (default: frames' device). The frames move there once; the tiles, their fades and the blend
    stay there, so a GPU upscale copies nothing back per tile. on_tile runs before each tile (interrupt checks,
    progress)."""
    n, _, height, width = frames.shape
    device = torch.device(device) if device is not None else frames.device
    frames = frames.to(device)
    overlap = capped_overlap(tile, overlap)
    cuts = grid(height, width, tile, overlap, align)
    col_fades = [fade(cols, width, overlap, scale).to(device) for cols in cuts.cols]
    out = weight = None
    for rows in cuts.rows:
        wy = fade(rows, height, overlap, scale).to(device)
        for cols, wx in zip(cuts.cols, col_fades):
            if on_tile is not None:
                on_tile()
            piece = frames[:, :, rows[0]:rows[1], cols[0]:cols[1]]
            result = fn(piece)
            expected = ((rows[1] - rows[0]) * scale, (cols[1] - cols[0]) * scale)
            if result.shape[0] != n or tuple(result.shape[2:]) != expected:
                raise ValueError(f"the upscaler returned {tuple(result.shape)} for a {tuple(piece.shape)} tile; "
                                 f"expected {n} frames of {expected[0]}x{expected[1]} (scale {scale})")
            result = result.to(device, torch.float32)
            if len(cuts) == 1:
                return result   # one tile is the whole frame: its fades are all 1, the blend would be a copy
            if out is None:
                out = torch.zeros((n, result.shape[1], height * scale, width * scale), dtype=torch.float32,
                                  device=device)
                weight = torch.zeros((1, 1, height * scale, width * scale), dtype=torch.float32, device=device)
            w = wy[:, None] * wx[None, :]
            ys, xs = slice(rows[0] * scale, rows[1] * scale), slice(cols[0] * scale, cols[1] * scale)
            out[:, :, ys, xs] += result * w
            weight[:, :, ys, xs] += w
    return out.div_(weight)


def is_torch_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError)


@dataclass
class TiledUpscaler:
    """Runs tiled_apply over a clip in frame batches on `device`, backing off on out-of-memory: first fewer frames
    per batch, then half the tile, down to `min_tile`. Finished batches are kept; only the failed one is redone.

    Each batch moves to `device` once and is upscaled, blended and post-processed there; finished frames are written
    into one output tensor on `store` (default: `device`, so a GPU run copies nothing back until the caller does;
    the caller picks a host device when the whole clip would not fit)."""
    fn: Callable[[torch.Tensor], torch.Tensor]
    scale: int
    tile: int
    overlap: int
    align: int = 1
    frame_batch: int = 1
    min_tile: int = DEFAULT_MIN_TILE
    device: torch.device | None = None
    is_oom: Callable[[BaseException], bool] = is_torch_oom
    on_progress: Callable[[int, int], None] | None = None   # (tiles done, tiles total), frames x tiles per frame
    check: Callable[[], None] | None = None                 # raises to stop (interrupt)
    on_oom: Callable[[int, int], None] | None = None        # (new tile, new frame batch), e.g. to free caches
    post: Callable[[torch.Tensor], torch.Tensor] | None = None   # per finished batch, e.g. the final resize, so
    # a 4x result never has to exist for the whole clip at once
    store: torch.device | None = None                       # where finished frames are kept

    def __post_init__(self):
        self.tile = max(self.align, self.tile // self.align * self.align)
        self.min_tile = min(self.tile, max(self.align, self.min_tile))
        self.frame_batch = max(1, self.frame_batch)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        n, _, height, width = frames.shape
        device = torch.device(self.device) if self.device is not None else frames.device
        store = torch.device(self.store) if self.store is not None else device
        out = None
        done = 0
        while done < n:
            batch = frames[done:done + self.frame_batch].to(device)
            per_frame = len(grid(height, width, self.tile, capped_overlap(self.tile, self.overlap), self.align))
            tiles_done = 0
            checking = False   # an interrupt must never pass for an OOM, even where OOM_EXCEPTION is Exception

            def on_tile():
                nonlocal tiles_done, checking
                if self.check is not None:
                    checking = True
                    self.check()
                    checking = False
                if self.on_progress is not None:
                    self.on_progress(done * per_frame + tiles_done * len(batch), n * per_frame)
                tiles_done += 1

            try:
                result = tiled_apply(batch, self.fn, self.scale, self.tile, self.overlap, self.align, device,
                                     on_tile)
                if self.post is not None:   # inside the try: the resize of a 4x batch can run out of memory too
                    result = self.post(result)
            except Exception as error:
                if checking or not self.is_oom(error):
                    raise
                self._back_off(error, height, width)
                result = None
            if result is None:
                # Outside the except block: the error's traceback no longer pins the failed batch's tensors, so
                # on_oom can really free them.
                if self.on_oom is not None:
                    self.on_oom(self.tile, self.frame_batch)
                continue
            if out is None:   # one tensor for the clip: no second copy of it from concatenating the batches
                out = torch.empty((n, *result.shape[1:]), dtype=result.dtype, device=store)
            out[done:done + len(batch)] = result
            done += len(batch)
            if self.on_progress is not None:
                self.on_progress(done * per_frame, n * per_frame)
        return out

    def _back_off(self, error: BaseException, height: int, width: int) -> None:
        if self.frame_batch > 1:
            self.frame_batch //= 2
        else:
            # A tile larger than the frame is the whole frame: halve what is really used, down to the floor.
            current = min(self.tile, max(height, width))
            if current <= self.min_tile:
                raise TileOOMError(
                    f"out of memory upscaling one {width}x{height} frame even in {current} px tiles (the floor is "
                    f"{self.min_tile} px). Free memory (unload other models, close other programs), use a lighter "
                    f"model (an SRVGGNetCompact one such as realesr-animevideov3) or upscale smaller frames."
                ) from error
            self.tile = max(self.min_tile, current // 2 // self.align * self.align)
