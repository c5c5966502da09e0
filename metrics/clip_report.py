"""Every clip metric in one place, as the rows of a table: the CLI (tools/evaluate.py) and the Clip Metrics node
print the same thing. Frames are (N, C, H, W) in [0, 1]."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .fidelity import check_reference, ssim, temporal_psnr
from .flicker import detail_flicker, flicker_index, psnr
from .flow import flow_stats
from .sharpness import laplacian_variance

# (key, label, unit, which way is better): the table's rows in order; reference rows only appear with a reference.
ROWS = (
    ("frames", "frames", "", ""),
    ("motion_px", "motion amplitude (mean flow)", "px/frame", "livelier when higher"),
    ("warp_error", "warp error (reliable flow)", "0-1", "steadier when lower"),
    ("flow_reliable", "pixels with reliable flow", "share", ""),
    ("detail_flicker", "detail flicker", "0-1", "steadier when lower"),
    ("sharpness", "sharpness (Laplacian variance, mean)", "0-255^2", "sharper when higher"),
    ("sharpness_min", "sharpness, softest frame", "0-255^2", "sharper when higher"),
    ("psnr", "PSNR vs reference, mean", "dB", "closer when higher"),
    ("psnr_min", "PSNR vs reference, worst frame", "dB", "closer when higher"),
    ("ssim", "SSIM vs reference, mean", "0-1", "closer when higher"),
    ("ssim_min", "SSIM vs reference, worst frame", "0-1", "closer when higher"),
    ("temporal_psnr", "PSNR of frame changes vs reference", "dB", "moves alike when higher"),
    ("flicker_index", "flicker index vs reference", "ratio", "steadier when lower"),
)


def check_clip(frames: torch.Tensor, name: str = "clip") -> None:
    if not isinstance(frames, torch.Tensor) or frames.dim() != 4:
        raise ValueError(f"the {name} must be frames shaped (N, C, H, W), got "
                         f"{tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__}")
    if frames.shape[0] < 2:
        raise ValueError(f"the {name} has {frames.shape[0]} frame; temporal metrics need at least 2 frames")


def evaluate_clip(frames: torch.Tensor, reference: torch.Tensor | None = None,
                  on_pair: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """All metrics of a clip (and against a same-size reference clip if given), keyed as in ROWS. on_pair reports
    the optical flow's progress over the frame pairs (the slow part)."""
    check_clip(frames)
    frames = frames.float().clamp(0, 1)
    if reference is not None:                      # a mismatched reference fails before the slow part, not after
        check_clip(reference, "reference clip")
        check_reference(frames, reference)
    flow = flow_stats(frames, on_pair)
    sharp = laplacian_variance(frames)
    result = {"frames": float(frames.shape[0]), "motion_px": flow.motion, "warp_error": flow.warp_error,
              "flow_reliable": flow.reliable, "detail_flicker": detail_flicker(frames),
              "sharpness": float(sharp.mean()), "sharpness_min": float(sharp.min())}
    if reference is not None:
        reference = reference.float().clamp(0, 1)
        per_frame_psnr, per_frame_ssim = psnr(frames, reference), ssim(frames, reference)
        result.update(psnr=float(per_frame_psnr.mean()), psnr_min=float(per_frame_psnr.min()),
                      ssim=float(per_frame_ssim.mean()), ssim_min=float(per_frame_ssim.min()),
                      temporal_psnr=temporal_psnr(frames, reference),
                      flicker_index=flicker_index(reference, frames))
    return result


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4g}"


def format_table(result: dict[str, float]) -> str:
    """A fixed-width text table: metric, value, unit, which way is better."""
    lines = [(label, _number(result[key]), unit, hint) for key, label, unit, hint in ROWS if key in result]
    widths = [max(len(row[i]) for row in lines + [("metric", "value", "unit", "")]) for i in range(3)]
    header = f"{'metric':<{widths[0]}}  {'value':>{widths[1]}}  {'unit':<{widths[2]}}"
    header = header.rstrip()
    out = [header, "-" * len(header)]
    for label, value, unit, hint in lines:
        out.append(f"{label:<{widths[0]}}  {value:>{widths[1]}}  {unit:<{widths[2]}}  {hint}".rstrip())
    return "\n".join(out)
