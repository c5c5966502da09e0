"""Benchmark: the shipped t2v graph in real ComfyUI, with and without the motion module.

    COMFYUI_PATH=/path/to/ComfyUI python -m dev.benchmarks.t2v [--frames 16] [--size 128] [--runs 3]

Each configuration gets a fresh ComfyUI process (so peak RSS is its own); the first run warms the model caches and is
not timed, then --runs runs with new seeds (so ComfyUI really executes them) are timed end to end (queue to done).
Prints the median wall time, peak RSS and the motion module's overhead ratio. Random-weight fixtures, CPU.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path


from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import load_api, sampler_id, small, without_motion
from dev.harness.models import model_files


def measure(api, runs: int, comfy: str) -> tuple[float, float, list]:
    with ComfyServer(comfy, model_files(comfy)) as srv:
        times = []
        for i in range(runs + 1):
            api[sampler_id(api)]["inputs"]["seed"] = 1000 + i
            start = time.perf_counter()
            srv.run(api)
            if i:
                times.append(time.perf_counter() - start)
        return statistics.median(times), srv.peak_rss_bytes() / 2**30, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy:
        sys.exit("set COMFYUI_PATH to a ComfyUI checkout")
    api = small(load_api("t2v_lightning"), args.size, args.frames)
    api[sampler_id(api)]["inputs"]["steps"] = args.steps
    print(f"t2v: {args.frames} frames, {args.size}x{args.size}, {args.steps} steps, CPU, {os.cpu_count()} cores, "
          f"median of {args.runs} warm runs")
    lightning = measure(api, args.runs, comfy)
    plain = measure(without_motion(api), args.runs, comfy)
    for label, (median, rss, times) in (("with motion module", lightning), ("without (plain SD1.5)", plain)):
        print(f"  {label:24s} {median:7.2f} s   peak RSS {rss:5.2f} GiB   runs: "
              + ", ".join(f"{t:.2f}" for t in times))
    print(f"  motion-module overhead: x{lightning[0] / plain[0]:.2f} wall time, "
          f"+{lightning[1] - plain[1]:.2f} GiB peak RSS")


if __name__ == "__main__":
    main()
