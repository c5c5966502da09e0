"""The motion module's overhead on one UNet pass, without a server: ComfyUI's own SD1.5 UNet (full size, random
weights) timed plain and then with the pack's 21 temporal modules inserted by the pack's own code.

    PYTHONPATH=/path/to/ComfyUI python -m dev.benchmarks.unet_ratio [--size 64] [--frames 16] [--conds 1] [--reps 3]
                                                                 [--flops]

CPU: CPU time of one thread (steady on a busy machine, unlike wall time); CUDA (fp16): wall time between
synchronisations. This is the core of the sampler ratio dev/benchmarks/e2e.py reports (a sampler step is one UNet pass
per cond); what e2e adds on top is ComfyUI's per-step work, the same with and without the module.
--flops also counts the floating-point operations of each pass (torch's FlopCounterMode: matrix products,
convolutions and attention): the ratio a FLOP-bound device cannot beat without doing less arithmetic.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


from dev.harness import patched_unet


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--conds", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--flops", action="store_true", help="also count each pass's floating-point operations")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    if device.type == "cpu":
        torch.set_num_threads(1)
    unet, motion = patched_unet.build(dtype=dtype, device=device)
    n = args.conds * args.frames
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, args.size // 8, args.size // 8, generator=gen).to(device, dtype)
    t = torch.full((n,), 500.0, device=device)
    context = torch.randn(n, 77, 768, generator=gen).to(device, dtype)
    options = patched_unet.transformer_options(args.conds)

    def timed() -> float:
        times = []
        with torch.inference_mode():
            unet(x, t, context, transformer_options=options)
            for _ in range(args.reps):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    unet(x, t, context, transformer_options=options)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - start)
                else:
                    start = time.process_time()
                    unet(x, t, context, transformer_options=options)
                    times.append(time.process_time() - start)
        return statistics.median(times)

    def flops() -> int:
        from torch.utils.flop_counter import FlopCounterMode
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            unet(x, t, context, transformer_options=options)
        return counter.get_total_flops()

    plain = timed()
    plain_flops = flops() if args.flops else None
    patched_unet.insert(unet, motion)
    with_motion = timed()
    if args.flops:
        motion_flops = flops()
        print(f"FLOPs of one UNet pass: plain {plain_flops / 1e9:.1f} G, with the motion module {motion_flops / 1e9:.1f} G,"
              f" x{motion_flops / plain_flops:.2f}")
    clock = "CPU time of 1 thread" if device.type == "cpu" else "wall"
    print(f"UNet pass, {args.size}x{args.size}, {args.frames} frames x {args.conds} cond(s), {device.type} "
          f"{str(dtype).replace('torch.', '')} ({clock}, median of {args.reps}): plain {plain:.3f} s, with the motion "
          f"module {with_motion:.3f} s, x{with_motion / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
