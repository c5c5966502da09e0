"""Long clips by context-window mode, in a real ComfyUI (COMFYUI_PATH, random-weight models from the host-tier cache).

One server; every case is warmed up once, then the timed runs go in rounds (one run of every case per round, in the
same order), so a drift in the machine's load hits every case alike. Cases, all at --size px:

  t2v_16        the shipped t2v_lightning workflow, 16 frames (no windows)
  long_64       the shipped t2v_long_64 workflow in its default mode ("motion module": windows inside the module)
  long_64_unet  the same with mode "whole UNet" (windows of the whole UNet, the pack's mode before issue 23)
  long_256      t2v_long_64 at 256 frames, default mode

Printed: the sampler node's median seconds per case (and per round), long_64 / t2v_16 (issue 23's target: <= 2.9x;
2.9x is AnimateDiff-Evolved's "views" windows as the issue measured it; dev/benchmarks/evolved_views.py measures
them on this machine), the peak RSS (VmHWM, reset before each run) of long_64 against long_64_unet (target: within
15%), and the sampler seconds per frame at 256 frames against 64 (target: within 15%).

    flock ~/.cache/adlightning-tests/host-tier.lock env COMFYUI_PATH=/path/to/ComfyUI \\
        python -m dev.benchmarks.long_clip [--size 64] [--rounds 3] [--cases ...]

It does not take the host-tier lock itself (run it under flock as above, like the host tier does).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time

from dev.benchmarks.e2e import Events, run_once, sampler_seconds
from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import load_api, nodes_of
from dev.harness.models import model_files
from tools.client import apply_overrides

GIB = 2 ** 30
CASES = ("t2v_16", "long_64", "long_64_unet", "long_256")
FRAMES = {"t2v_16": 16, "long_64": 64, "long_64_unet": 64, "long_256": 256}


def run_rounds(server, prompts: dict, results: dict, rounds: int, timeout: float, tag: str) -> None:
    """Every prompt once as a warm-up (loaders cached, the patched model loaded), then `rounds` rounds of every prompt
    in the same order, so a drift in the machine's load hits every case alike. Appends run_once's records."""
    events = Events(server, tag)
    for name, api in prompts.items():
        results[name].append(run_once(server, events, name, api, 0, 1, timeout))
    for i in range(1, 1 + rounds):
        for name, api in prompts.items():
            results[name].append(run_once(server, events, name, api, i, 1, timeout))


def print_table(prompts: dict, results: dict, frames: dict):
    """The markdown table of the timed runs; returns (sampler seconds per round, their medians, median peak RSS)."""
    sampler = {name: sampler_seconds(prompts[name], results[name]) for name in prompts}
    rss = {name: statistics.median(r["peak_rss"] for r in results[name] if not r["warmup"]) for name in prompts}
    print("\n| case | frames | sampler s (median; per round) | s per frame | peak RSS (median) |")
    print("|------|--------|-------------------------------|-------------|-------------------|")
    for name in prompts:
        med = statistics.median(sampler[name])
        rounds = ", ".join(f"{s:.1f}" for s in sampler[name])
        print(f"| {name} | {frames[name]} | {med:.2f} ({rounds}) | {med / frames[name]:.3f} "
              f"| {rss[name] / GIB:.2f} GiB |")
    return sampler, {name: statistics.median(sampler[name]) for name in prompts}, rss


def case_graph(name: str, size: int) -> dict:
    if name == "t2v_16":
        return apply_overrides(load_api("t2v_lightning"), frames=16, size=str(size))
    frames = 256 if name == "long_256" else 64
    api = apply_overrides(load_api("t2v_long_64"), frames=frames, size=str(size))
    if name.endswith("_unet"):
        api[nodes_of(api, "ADLightning_ContextOptions")[0]]["inputs"]["mode"] = "whole UNet"
    return api


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    comfyui = os.environ["COMFYUI_PATH"]
    prompts = {name: case_graph(name, args.size) for name in args.cases}
    server = ComfyServer(comfyui, model_files(comfyui), cpu=True, memory_route=True)
    results = {name: [] for name in prompts}
    try:
        server.wait_ready()
        print(f"ComfyUI {comfyui}, CPU, {os.cpu_count()} cores, {args.size} px, {args.rounds} rounds; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
        run_rounds(server, prompts, results, args.rounds, args.timeout, "adl-long-clip")
    except Exception:
        print(server.log()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
    sampler, med, rss = print_table(prompts, results, FRAMES)
    if "t2v_16" in med and "long_64" in med:
        per_round = [a / b for a, b in zip(sampler["long_64"], sampler["t2v_16"])]
        print(f"long_64 / t2v_16 sampler: x{med['long_64'] / med['t2v_16']:.2f} "
              f"(per round {', '.join(f'x{r:.2f}' for r in per_round)}; target <= 2.9)")
    if "long_64_unet" in med and "t2v_16" in med:
        print(f"long_64_unet / t2v_16 sampler: x{med['long_64_unet'] / med['t2v_16']:.2f}")
    if "long_64" in med and "long_64_unet" in med:
        print(f"long_64 peak RSS / long_64_unet: {rss['long_64'] / rss['long_64_unet']:.3f} (target within 15%)")
    if "long_256" in med and "long_64" in med:
        print(f"sampler s per frame, 256 / 64 frames: {(med['long_256'] / 256) / (med['long_64'] / 64):.3f} "
              f"(target within 15%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
