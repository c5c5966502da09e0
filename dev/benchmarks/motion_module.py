"""The motion module alone: its 21 calls of one UNet pass at a given size, timed, and where the time goes.

    python -m dev.benchmarks.motion_module [--size 512] [--frames 16] [--conds 1] [--device cuda] [--dtype float16]
                                        [--profile] [--compile]

Full-size Lightning-shaped module (random weights, like the host tier's), inputs shaped as the SD1.5 UNet hands them
over (latent size/8 at the first level, halved per level). CPU: CPU time of one thread (steady even on a busy
machine); CUDA: wall time between synchronisations. --profile prints torch.profiler's table (what to optimise),
--compile also times torch.compile(mode default) of each module (first call = compile cost).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


from dev.harness.motion_files import random_state_dict
from adlightning.motion.module import MotionConfig, MotionModel


def calls(model: MotionModel, size: int, frames: int, conds: int, device, dtype):
    """(module, input) for each of the 21 placements, at the width and resolution of its UNet block."""
    latent = size // 8
    out = []
    for part, index, module in model.placements():
        level = (index - 1) // 3 if part == "input" else 3 if part == "middle" else 3 - index // 3
        side = max(1, latent >> level)
        channels = module.temporal_transformer.proj_in.in_features
        gen = torch.Generator().manual_seed(len(out))
        out.append((module, torch.randn(conds * frames, channels, side, side, generator=gen).to(device, dtype)))
    return out


def timed(fn, device, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        else:
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (latent = size/8)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--conds", type=int, default=1, help="1 for cfg 1, 2 for cfg > 1")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="float16 / bfloat16 / float32 (default: fp16 on CUDA, fp32 on CPU)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("float16" if device.type == "cuda" else "float32"))
    if device.type == "cpu":
        torch.set_num_threads(1)
    config = MotionConfig()
    model = MotionModel(config)
    model.load_state_dict(random_state_dict(config, dtype=torch.float32))
    model = model.to(device, dtype).eval().requires_grad_(False)
    for layer in model.modules():   # as motion.loader.build: position tables stay float32
        if hasattr(layer, "pe"):
            layer.pe = layer.pe.float()
    work = calls(model, args.size, args.frames, args.conds, device, dtype)

    def once(modules=None):
        for i, (module, x) in enumerate(work):
            (modules[i] if modules else module)(x, args.frames)

    with torch.inference_mode():
        once()
        times = timed(once, device, args.reps)
    clock = "CPU time, 1 thread" if device.type == "cpu" else "wall"
    print(f"motion module, 21 calls of one UNet pass: {args.size}x{args.size}, {args.frames} frames x {args.conds} "
          f"cond(s), {device.type} {str(dtype).replace('torch.', '')}: median {statistics.median(times) * 1e3:.1f} ms "
          f"(min {min(times) * 1e3:.1f}, {clock}, {args.reps} reps)")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch.inference_mode(), profile(activities=activities) as prof:
            once()
            if device.type == "cuda":
                torch.cuda.synchronize()
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=20))
    if args.compile:
        compiled = [torch.compile(module) for module, _ in work]
        with torch.inference_mode():
            first = timed(lambda: once(compiled), device, 1)[0]
            ctimes = timed(lambda: once(compiled), device, args.reps)
        print(f"torch.compile: first call {first:.1f} s (compiling), then median "
              f"{statistics.median(ctimes) * 1e3:.1f} ms (x{statistics.median(times) / statistics.median(ctimes):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
