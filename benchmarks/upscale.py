"""Upscale Frames on CPU: seconds per frame for each Real-ESRGAN family, and what stabilisation does to flicker.

    python benchmarks/upscale.py [--frames 4] [--threads N]

Models are random-weight but full-size, in the released layouts (harness/upscale_files.py): speed depends on
the architecture, not the weights. Flicker figures use a synthetic moving clip with per-frame noise added to the
upscale, because random weights do not shimmer the way a trained GAN upscaler does.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics.flicker import flicker_index, psnr  # noqa: E402
from upscaling.temporal_stabilize import stabilize  # noqa: E402
from upscaling.upscale_models import model_summary, upscale_frames  # noqa: E402
from harness.upscale_files import RELEASES, load_release, moving_clip  # noqa: E402

SIZES = (64, 128)   # input side; the output is 2x (native for x2plus, a resize of 4x for the others)
NOISE = 0.02


def seconds_per_frame(model, size: int, frames: int, repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds per frame, each the best of `repeats`. On a shared machine the wall figure depends on the
    neighbours; the CPU-seconds (all threads) barely do, and divided by the thread count they estimate an idle
    machine's wall time."""
    images = moving_clip(frames=frames, size=size).movedim(1, -1)
    upscale_frames(images[:1], model, scale=2.0, temporal_stabilize=False)      # warm-up
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = upscale_frames(images, model, scale=2.0, temporal_stabilize=False)
        wall = min(wall, (time.perf_counter() - start) / frames)
        cpu = min(cpu, (time.process_time() - start_cpu) / frames)
    assert out.shape == (frames, 2 * size, 2 * size, 3)
    return wall, cpu


def stabilise_seconds_per_frame(size: int, frames: int = 16, repeats: int = 3) -> float:
    low = moving_clip(frames=frames, size=size)
    high = torch.rand(frames, 3, 2 * size, 2 * size, generator=torch.Generator().manual_seed(0))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        stabilize(low, high)
        best = min(best, (time.perf_counter() - start) / frames)
    return best


def flicker_figures(model, size: int = 64, frames: int = 16) -> dict[str, float]:
    low = moving_clip(frames=frames, size=size)
    plain = upscale_frames(low.movedim(1, -1), model, scale=2.0, temporal_stabilize=False).movedim(-1, 1)
    noise = NOISE * torch.randn(plain.shape, generator=torch.Generator().manual_seed(0))
    noisy = (plain + noise).clamp(0, 1)
    stable = stabilize(low, noisy)
    # How much the plain upscale changes where the input did not: a model with a frame-wide receptive field
    # (random deep RRDBs) repaints still areas when something far away moves, and stabilisation smooths that too.
    still = (low[1:] - low[:-1]).abs().amax(dim=1, keepdim=True) == 0
    still = torch.nn.functional.interpolate(still.float(), size=plain.shape[-2:], mode="nearest").bool()
    repaint = (plain[1:] - plain[:-1]).abs()[still.expand(-1, 3, -1, -1)].mean().item() * 255
    return {"plain": flicker_index(low, plain), "noisy": flicker_index(low, noisy),
            "stabilised": flicker_index(low, stable), "psnr_noisy": psnr(stable, noisy).min().item(),
            "psnr_plain": psnr(stabilize(low, plain), plain).min().item(), "repaint": repaint}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2, help="frames per timed clip")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the best is printed")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--skip-flicker", action="store_true", help="timings only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU, {args.threads} threads, load average {os.getloadavg()[0]:.1f}; "
          f"best of {args.repeats} runs of {args.frames} frames; scale 2.0, tile 512 (whole frames), no stabilisation")
    print(f"{'':67}" + "".join(f"{f'{s}->{2 * s} px':>24}" for s in SIZES))
    print(f"{'model':32} {'family':34}" + f"{'wall s/frame':>14}{'CPU-s/frame':>12}" * len(SIZES))
    models = {}
    for name in RELEASES:
        model = models[name] = load_release(name)
        figures = [seconds_per_frame(model, size, args.frames, args.repeats) for size in SIZES]
        print(f"{name:32} {model_summary(model):34}" + "".join(f"{wall:14.3f}{cpu:12.3f}" for wall, cpu in figures))
    print("stabilisation alone, s/frame (16 frames): "
          + ", ".join(f"{s}->{2 * s}: {stabilise_seconds_per_frame(s):.4f}" for s in SIZES))
    if args.skip_flicker:
        return
    print(f"\nflicker index, 16-frame 64 px moving clip upscaled 2x; 'noisy' adds per-frame noise {NOISE} to it")
    print(f"{'model':32} {'plain':>7} {'noisy':>7} {'stabilised':>11} {'min PSNR stab/noisy':>20} "
          f"{'min PSNR stab/plain':>20} {'still-area change (levels)':>27}")
    for name, model in models.items():
        f = flicker_figures(model)
        print(f"{name:32} {f['plain']:7.3f} {f['noisy']:7.3f} {f['stabilised']:11.3f} {f['psnr_noisy']:20.1f} "
              f"{f['psnr_plain']:20.1f} {f['repaint']:27.2f}")


if __name__ == "__main__":
    main()
