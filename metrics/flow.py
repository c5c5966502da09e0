"""Dense optical flow between neighbouring frames, and the two numbers built on it: motion amplitude (how far things
move) and warp error (how much a frame differs from its predecessor carried along the flow: what motion does not
explain, i.e. flicker, popping and morphing). OpenCV's Farneback flow is the tool here: fast on a CPU, no weights.

OpenCV is imported on first use, not at import time: ComfyUI does not ship it, so the pack must load without it and
say how to install it only when a flow metric is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

# Forward-backward consistency (Sundaram, Brox and Keutzer 2010): a pixel's flow is trusted when going forward and then
# back lands within this tolerance of where it started; occluded, disoccluded and textureless pixels fail it.
FB_RELATIVE = 0.01
FB_ABSOLUTE = 0.5           # px^2

OPENCV_MISSING = ("the optical-flow clip metrics need OpenCV, which ComfyUI does not ship; install it into the Python "
                  "that runs ComfyUI (or this tool) with: pip install opencv-python-headless")


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(OPENCV_MISSING) from exc
    return cv2


@dataclass(frozen=True)
class FlowStats:
    motion: float           # mean flow magnitude, px per frame, over every pixel of every neighbouring pair
    warp_error: float       # mean |frame t+1 - frame t warped along the flow| over reliable pixels, in [0, 1] units
    reliable: float         # share of pixels whose flow passed the forward-backward check


def _gray_u8(frame: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] to the 8-bit grey image Farneback wants."""
    gray = frame.float().mean(dim=0) if frame.shape[0] != 3 else (
        0.299 * frame[0] + 0.587 * frame[1] + 0.114 * frame[2]).float()
    return (gray.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def dense_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Farneback flow from grey image a to b, (H, W, 2) in px: a pixel p of a sits at p + flow[p] in b."""
    cv2 = _cv2()
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
                                        poly_sigma=1.2, flags=0)


def _sample(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """image sampled at p + flow[p] (bilinear), and whether that point lies inside the image."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    sampled = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return sampled, inside


def flow_stats(frames: torch.Tensor, on_pair: Callable[[int, int], None] | None = None) -> FlowStats:
    """Motion amplitude and warp error of an (N, C, H, W) clip in [0, 1] (N >= 2).

    For each pair (t, t+1) the backward flow (t+1 -> t) says where each pixel of frame t+1 came from; frame t sampled
    there is frame t carried onto t+1. The error is taken only where the forward flow, read at that source point,
    leads back (forward-backward consistency) and the source lies inside the frame, so occlusions and the border that
    moved in are not counted as instability. on_pair(done, total) is called after each pair (progress; it may raise
    to cancel).
    """
    if frames.dim() != 4 or frames.shape[0] < 2:
        raise ValueError(f"flow metrics need a clip of at least 2 frames shaped (N, C, H, W), got {tuple(frames.shape)}")
    grays = [_gray_u8(f) for f in frames]
    colour = frames.float().clamp(0, 1).permute(0, 2, 3, 1).contiguous().cpu().numpy()     # (N, H, W, C)
    motion = error = reliable_total = 0.0
    pixels = 0
    for t in range(frames.shape[0] - 1):
        forward = dense_flow(grays[t], grays[t + 1])
        backward = dense_flow(grays[t + 1], grays[t])
        motion += float(np.linalg.norm(forward, axis=2).mean())
        forward_at_source, inside = _sample(forward, backward)
        round_trip = backward + forward_at_source
        tolerance = FB_RELATIVE * ((backward ** 2).sum(2) + (forward_at_source ** 2).sum(2)) + FB_ABSOLUTE
        reliable = inside & ((round_trip ** 2).sum(2) <= tolerance)
        carried, _ = _sample(colour[t], backward)
        if carried.ndim == 2:
            carried = carried[..., None]
        diff = np.abs(colour[t + 1] - carried).mean(axis=2)
        error += float(diff[reliable].sum())
        reliable_total += float(reliable.sum())
        pixels += reliable.size
        if on_pair is not None:
            on_pair(t + 1, frames.shape[0] - 1)
    pairs = frames.shape[0] - 1
    return FlowStats(motion=motion / pairs, warp_error=error / max(reliable_total, 1.0),
                     reliable=reliable_total / pixels)
