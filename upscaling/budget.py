"""How a clip's upscale uses device memory: frames per model call, and whether the whole clip stays on the device
until it is finished (one transfer back) or finished batches go to the host (pure arithmetic, no torch)."""
from __future__ import annotations

FLOAT32 = 4
USABLE = 0.8          # of the free memory: room for the allocator's fragmentation and the caching of other nodes


def tile_bytes(tile: int, height: int, width: int, scale: int, factor: float) -> int:
    """Working memory for one frame's tile: core's estimate for upscale models (Upscale Image (using Model):
    512^2 x 3 x float32 x scale x factor; the node passes core's factor, nodes/comfy_compat.UPSCALE_MEMORY_FACTOR),
    for the tile actually used. It is generous for the compact models and about right for RRDBNet x4 in float32;
    the tiler's out-of-memory back-off covers the rest."""
    side = min(tile, max(height, width))
    return int(side * side * 3 * FLOAT32 * max(scale, 1) * factor)


def clip_bytes(frames: int, height: int, width: int, target: tuple[int, int], stabilise: bool) -> int:
    """Device memory a clip holds while it is upscaled there: the input frames and the upscaled ones in float32,
    the upscaled ones twice when stabilising (its result is a second clip)."""
    low = frames * 3 * height * width * FLOAT32
    high = frames * 3 * target[0] * target[1] * FLOAT32
    return low + high * (2 if stabilise else 1)


def plan(frames: int, free: int, per_frame: int, clip: int, max_batch: int) -> tuple[int, bool]:
    """(frames per model call, keep the clip on the device). Keeping it is preferred (nothing crosses back until
    the end) when it fits beside one frame's working memory; the batch then takes what is left."""
    usable = free * USABLE
    keep = clip + per_frame <= usable
    room = usable - (clip if keep else 0)
    return max(1, min(frames, max_batch, int(room // max(per_frame, 1)))), keep
