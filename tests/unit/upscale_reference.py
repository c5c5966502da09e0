"""The upscale pipeline as it was before it moved onto the device (commit 457edb3): tiles blended on the frames'
device in float32, each tile's result copied back, the resize per frame batch, stabilisation afterwards. Kept only as
the reference the device pipeline is compared with (test_upscale_device.py); not used by the product."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from adlightning.upscaling.tiles import capped_overlap, fade, grid


def resize_frames(frames, size):
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    return F.interpolate(frames, size=size, mode="bicubic", align_corners=False, antialias=True)


def tiled_apply(frames, fn, scale, tile, overlap, align=1, device=None):
    n, _, height, width = frames.shape
    overlap = capped_overlap(tile, overlap)
    cuts = grid(height, width, tile, overlap, align)
    out = weight = None
    for rows in cuts.rows:
        wy = fade(rows, height, overlap, scale).to(frames.device)
        for cols in cuts.cols:
            piece = frames[:, :, rows[0]:rows[1], cols[0]:cols[1]]
            result = fn(piece.to(device or frames.device)).to(frames.device, torch.float32)
            if out is None:
                out = frames.new_zeros((n, result.shape[1], height * scale, width * scale), dtype=torch.float32)
                weight = frames.new_zeros((1, 1, height * scale, width * scale), dtype=torch.float32)
            w = wy[:, None] * fade(cols, width, overlap, scale).to(frames.device)[None, :]
            ys, xs = slice(rows[0] * scale, rows[1] * scale), slice(cols[0] * scale, cols[1] * scale)
            out[:, :, ys, xs] += result * w
            weight[:, :, ys, xs] += w
    return out / weight


def stillness(previous, current, size, threshold=0.03):
    change = (current - previous).abs().amax(dim=1, keepdim=True)
    change = F.max_pool2d(change, 3, stride=1, padding=1)
    still = torch.exp(-(change / threshold) ** 2)
    return F.interpolate(still, size=size, mode="bilinear", align_corners=False)


def stabilize(low, high, strength=0.8, threshold=0.03):
    count = high.shape[0]
    size = tuple(high.shape[-2:])
    if count < 2 or strength <= 0:
        return high.clone()

    def base(t):
        return resize_frames(low[t:t + 1], size)

    def carry(a, b):
        return strength * stillness(low[a:a + 1], low[b:b + 1], size, threshold)

    out = torch.empty_like(high)
    smoothed = high[-1:] - base(count - 1)
    out[-1:] = smoothed
    for t in range(count - 2, -1, -1):
        detail = high[t:t + 1] - base(t)
        smoothed = detail + carry(t + 1, t) * (smoothed - detail)
        out[t:t + 1] = smoothed
    for t in range(count):
        frame_base = base(t)
        detail = high[t:t + 1] - frame_base
        smoothed = detail if t == 0 else detail + carry(t - 1, t) * (smoothed - detail)
        out[t:t + 1] = (frame_base + 0.5 * (smoothed + out[t:t + 1])).clamp(0, 1)
    return out


def upscale_frames(images, model, scale=0.0, tile=512, overlap=32, temporal_stabilize=True, frame_batch=1):
    """IMAGE (N, H, W, 3) -> IMAGE, the pre-device pipeline for a model that tiles externally."""
    frames = images.movedim(-1, 1).float()
    height, width = frames.shape[-2:]
    align = model.size_requirements.multiple_of
    tile = max(align, tile // align * align)
    scale = scale if scale > 0 else model.scale
    target = max(1, round(height * scale)), max(1, round(width * scale))
    chunks = []
    with torch.no_grad():
        for start in range(0, frames.shape[0], frame_batch):
            batch = tiled_apply(frames[start:start + frame_batch], lambda p: model(p.to(model.dtype)), model.scale,
                                tile, overlap, align)
            chunks.append(resize_frames(batch, target).clamp(0, 1))
        upscaled = torch.cat(chunks)
        if temporal_stabilize:
            upscaled = stabilize(frames, upscaled)
    return upscaled.movedim(1, -1).contiguous()
