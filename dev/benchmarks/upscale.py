"""Upscale Frames: seconds per frame for each Real-ESRGAN family, and what stabilisation does to flicker.

    python -m dev.benchmarks.upscale [--frames 4] [--threads N]                     # CPU
    python -m dev.benchmarks.upscale --device cuda --sizes 512 --frames 16 --skip-flicker [--half]
    python -m dev.benchmarks.upscale --device cuda --gpu-check                       # half vs float32, 12 GB budget

Models are random-weight but full-size, in the released layouts (dev/harness/upscale_files.py): speed depends on
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


from adlightning.upscaling.budget import clip_bytes, plan, tile_bytes
from adlightning.metrics.flicker import flicker_index, psnr
from adlightning.upscaling.temporal_stabilize import stabilize
from adlightning.upscaling.upscale_models import compute_dtype, model_summary, upscale_frames
from dev.harness.upscale_files import RELEASES, load_release, moving_clip

SIZES = (64, 128)   # input side; the output is 2x (native for x2plus, a resize of 4x for the others)
NOISE = 0.02
CORE_UPSCALE_FACTOR = 384   # core's estimate factor, as nodes/comfy_compat.UPSCALE_MEMORY_FACTOR (the pack's node passes that)


def seconds_per_frame(model, size: int, frames: int, repeats: int, device: torch.device = torch.device("cpu"),
                      dtype: torch.dtype | None = None, batch: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds per frame, each the best of `repeats`, frames from and back to the host. On a shared
    machine the wall figure depends on the neighbours; the CPU-seconds (all threads) barely do, and divided by the
    thread count they estimate an idle machine's wall time."""
    images = moving_clip(frames=frames, size=size).movedim(1, -1)
    run = dict(scale=2.0, temporal_stabilize=False, device=device, dtype=dtype, frame_batch=batch)
    upscale_frames(images[:batch], model, **run)      # warm-up
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = upscale_frames(images, model, **run)    # ends with the copy to the host: synchronised
        wall = min(wall, (time.perf_counter() - start) / frames)
        cpu = min(cpu, (time.process_time() - start_cpu) / frames)
    assert out.shape == (frames, 2 * size, 2 * size, 3)
    return wall, cpu


def gpu_check(device: torch.device) -> None:
    """Full-size random weights on the GPU: half precision against float32 in 8-bit levels, the time per 512 px
    frame of both, and issue 9's small-GPU case (32 frames at 512 px, 2x, stabilised) under a 12 GiB cap with the
    node's own batch planning, with its peak memory."""
    images = moving_clip(frames=32, size=512).movedim(1, -1)
    total = torch.cuda.get_device_properties(device).total_memory
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    print(f"{'model':32} {'f32 s/frame':>12} {'half s/frame':>13} {'max |d| levels':>15} {'> 1 level':>10}"
          f" {'12 GiB: batch, keep, peak GiB, s':>34}")
    for name in RELEASES:
        model = load_release(name).to(device)
        dtype = compute_dtype(model, half=True, bfloat16=True)
        times = [seconds_per_frame(model, 512, 16, 3, device, d, batch=8)[0] for d in (None, dtype)]
        clip16 = images[:16]
        ref = upscale_frames(clip16, model, scale=2.0, device=device, frame_batch=8)
        half = upscale_frames(clip16, model, scale=2.0, device=device, frame_batch=8, dtype=dtype)
        levels = ((half * 255).round() - (ref * 255).round()).abs()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(12 * 2**30 / total, device)
        torch.cuda.reset_peak_memory_stats(device)
        free = 12 * 2**30 - torch.cuda.memory_allocated(device)
        per_frame = tile_bytes(512, 512, 512, model.scale, CORE_UPSCALE_FACTOR)
        batch, keep = plan(32, free, per_frame, clip_bytes(32, 512, 512, (1024, 1024), True), 8)
        start = time.perf_counter()
        upscale_frames(images, model, scale=2.0, device=device, frame_batch=batch, dtype=dtype,
                       store=device if keep else torch.device("cpu"))
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        print(f"{name:32} {times[0]:12.4f} {times[1]:13.4f} {levels.max().item():15.0f} "
              f"{(levels > 1).float().mean().item():10.2e} {f'{batch}, {keep}, {peak:.2f}, {seconds:.2f}':>34}")
        del model
        torch.cuda.empty_cache()


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
    parser.add_argument("--device", default="cpu", help="where the model runs, e.g. cuda")
    parser.add_argument("--half", action="store_true", help="float16 (or bfloat16) autocast, as the node on CUDA")
    parser.add_argument("--batch", type=int, default=1, help="frames per model call")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="input sides, comma-separated")
    parser.add_argument("--gpu-check", action="store_true", help="half vs float32 and the 12 GiB case (CUDA)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.gpu_check:
        gpu_check(device)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__}, {device}, {args.threads} CPU threads, load average {os.getloadavg()[0]:.1f}; "
          f"best of {args.repeats} runs of {args.frames} frames, {args.batch} per call; scale 2.0, tile 512 (whole "
          f"frames), no stabilisation{', half precision' if args.half else ''}")
    print(f"{'':67}" + "".join(f"{f'{s}->{2 * s} px':>24}" for s in sizes))
    print(f"{'model':32} {'family':34}" + f"{'wall s/frame':>14}{'CPU-s/frame':>12}" * len(sizes))
    models = {}
    for name in RELEASES:
        model = models[name] = load_release(name).to(device)
        dtype = compute_dtype(model, half=True, bfloat16=True) if args.half else None
        figures = [seconds_per_frame(model, size, args.frames, args.repeats, device, dtype, args.batch)
                   for size in sizes]
        print(f"{name:32} {model_summary(model):34}" + "".join(f"{wall:14.3f}{cpu:12.3f}" for wall, cpu in figures))
    if device.type == "cpu":
        print("stabilisation alone, s/frame (16 frames): "
              + ", ".join(f"{s}->{2 * s}: {stabilise_seconds_per_frame(s):.4f}" for s in sizes))
    if args.skip_flicker:
        return
    print(f"\nflicker index, 16-frame 64 px moving clip upscaled 2x; 'noisy' adds per-frame noise {NOISE} to it")
    print(f"{'model':32} {'plain':>7} {'noisy':>7} {'stabilised':>11} {'min PSNR stab/noisy':>20} "
          f"{'min PSNR stab/plain':>20} {'still-area change (levels)':>27}")
    for name, model in models.items():
        f = flicker_figures(model.to("cpu"))
        print(f"{name:32} {f['plain']:7.3f} {f['noisy']:7.3f} {f['stabilised']:11.3f} {f['psnr_noisy']:20.1f} "
              f"{f['psnr_plain']:20.1f} {f['repaint']:27.2f}")


if __name__ == "__main__":
    main()
