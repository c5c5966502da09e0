"""Print the temporal-quality metrics of a clip (metrics/clip_report.py), optionally against a reference clip.

    python -m tools.evaluate clip.mp4 [--reference ref.mp4] [--json]

Reads MP4/WEBM/MKV/MOV (PyAV, which ComfyUI installs), GIF and animated WEBP/PNG (Pillow), or a folder of frame images
(sorted by name). The optical-flow rows need OpenCV (pip install opencv-python-headless). Exit status: 0, or 2 for a
file that is not a readable clip (the message says which and why).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from adlightning.metrics.clip_report import evaluate_clip, format_table

VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".m4v", ".avi"}
IMAGE_SUFFIXES = {".gif", ".webp", ".png", ".apng", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


class ClipError(Exception):
    """A file or folder that cannot be read as a clip; the message names it and says why."""


def _stack(frames: list[np.ndarray], source: Path) -> torch.Tensor:
    if len(frames) < 2:
        raise ClipError(f"{source}: has {len(frames)} frame(s); a clip needs at least 2 to measure anything temporal")
    sizes = {f.shape for f in frames}
    if len(sizes) > 1:
        raise ClipError(f"{source}: frames differ in size {sorted(sizes)}; give frames of one size")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def _read_video(path: Path) -> list[np.ndarray]:
    try:
        import av
    except ImportError as exc:
        raise ClipError(f"{path}: reading {path.suffix} needs PyAV (pip install av; ComfyUI installs it)") from exc
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipError(f"{path}: has no video stream")
            return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except av.FFmpegError as exc:
        raise ClipError(f"{path}: is not a readable video ({exc})") from exc


def _read_animation(path: Path) -> list[np.ndarray]:
    from PIL import Image, ImageSequence, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
    except (UnidentifiedImageError, OSError) as exc:
        raise ClipError(f"{path}: is not a readable image or animation ({exc})") from exc


def _read_folder(path: Path) -> list[np.ndarray]:
    from PIL import Image, UnidentifiedImageError
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ClipError(f"{path}: folder holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    frames = []
    for file in files:
        try:
            with Image.open(file) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as exc:
            raise ClipError(f"{file}: is not a readable image ({exc})") from exc
    return frames


def load_clip(path: str | Path) -> torch.Tensor:
    """(N, 3, H, W) float frames in [0, 1] from a video file, an animated image or a folder of frames."""
    path = Path(path)
    if not path.exists():
        raise ClipError(f"{path}: no such file or folder")
    if path.is_dir():
        return _stack(_read_folder(path), path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return _stack(_read_video(path), path)
    if suffix in IMAGE_SUFFIXES:
        return _stack(_read_animation(path), path)
    raise ClipError(f"{path}: not a clip this tool reads; give an MP4/WEBM/MKV/MOV video, a GIF or animated "
                    f"WEBP/PNG, or a folder of frame images")


def _json_value(value: float):
    return None if math.isinf(value) or math.isnan(value) else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Temporal-quality metrics of a clip (motion, warp error, flicker, "
                                                 "sharpness; PSNR/SSIM against a reference clip).")
    parser.add_argument("clip", help="video file (MP4/WEBM/...), GIF/animated WEBP, or a folder of frames")
    parser.add_argument("--reference", help="a clip of the same size and frame count to compare against")
    parser.add_argument("--json", action="store_true", help="print JSON (infinite PSNR as null) instead of a table")
    args = parser.parse_args(argv)
    try:
        frames = load_clip(args.clip)
        reference = load_clip(args.reference) if args.reference else None
        result = evaluate_clip(frames, reference)
    except (ClipError, ValueError, ImportError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({k: _json_value(v) for k, v in result.items()}, indent=1))
    else:
        print(f"{args.clip}" + (f"  (reference: {args.reference})" if args.reference else ""))
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
