"""Context windows in a real ComfyUI (COMFYUI_PATH, random-weight models from the host-tier fixture cache).

    COMFYUI_PATH=/opt/hosts/ComfyUI python -m dev.benchmarks.window_host rss [--size 64]
        Peak RSS of the shipped 64-frame workflow at 16 and at 64 frames: whole runs in fresh --cache-none servers,
        then sampling + decoding alone in one caching server after a warm-up (VmHWM reset before each run), with the
        largest RSS sampled while the sampler and the VAE decode ran, and wall time.
    COMFYUI_PATH=/opt/hosts/ComfyUI python -m dev.benchmarks.window_host seams
        64 frames at 64 px with several context settings in one prompt (same seed), seam metric on the latents.

Takes the host-tier lock, so it waits for (and blocks) host-tier test runs on this machine.
"""
from __future__ import annotations

import argparse
import copy
import fcntl
import os
import sys
import time
from pathlib import Path


from adlightning.metrics.seams import frame_changes, seam_ratio
from adlightning.samplers.windows import WindowOptions, windows
from dev.harness.motion_files import cache_dir
from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import add_save_latent, drop_saves, load_api, nodes_of, small
from dev.harness.models import model_files
from dev.harness.listener import Listener, saved_latent

WORKFLOW = "t2v_long_64"
STEPS = 4
GIB = 2 ** 30


def server(*extra_args) -> ComfyServer:
    srv = ComfyServer(os.environ["COMFYUI_PATH"], model_files(os.environ["COMFYUI_PATH"]), extra_args=list(extra_args))
    srv.wait_ready()
    return srv


def measure_run(srv: ComfyServer, api: dict) -> dict:
    sampler = nodes_of(api, "ADLightning_Sampler")[0]
    decode = (nodes_of(api, "ADLightning_DecodeFrames") + nodes_of(api, "VAEDecode"))[0]
    srv.reset_peak_rss()
    with Listener(srv, poll_rss=True) as listener:
        start = time.time()
        srv.wait(listener.queue(api), timeout=3600)
        wall = time.time() - start
    return {"peak": srv.peak_rss_bytes(), "sampling": listener.rss_by_node.get(sampler, 0),
            "decoding": listener.rss_by_node.get(decode, 0), "wall": wall}


def print_rss(title: str, rows: dict) -> None:
    print(f"\n{title}")
    print("| frames | peak RSS (VmHWM) | largest RSS while sampling | while VAE decoding | wall |")
    print("|--------|------------------|----------------------------|--------------------|------|")
    for frames, r in rows.items():
        print(f"| {frames:6d} | {r['peak'] / GIB:12.2f} GiB | {r['sampling'] / GIB:22.2f} GiB "
              f"| {r['decoding'] / GIB:14.2f} GiB | {r['wall']:4.0f} s |")
    print(f"64 / 16 frames peak RSS: {rows[64]['peak'] / rows[16]['peak']:.3f}")


def rss(size: int, decode: str, skip_whole: bool = False) -> None:
    def graph(frames, seed=0):
        api = small(load_api(WORKFLOW), size, frames)
        api[nodes_of(api, "ADLightning_Sampler")[0]]["inputs"]["seed"] = seed
        if decode == "core":   # core's VAE Decode in place of the sliced one, for comparison
            node = nodes_of(api, "ADLightning_DecodeFrames")[0]
            inputs = api[node]["inputs"]
            api[node] = {"class_type": "VAEDecode", "inputs": {"samples": inputs["samples"], "vae": inputs["vae"]}}
        return api

    whole = {}
    for frames in () if skip_whole else (16, 64):
        srv = server("--cache-none")
        try:
            whole[frames] = measure_run(srv, graph(frames))
        finally:
            srv.stop()
    if whole:
        print_rss(f"Whole workflow, {size} px, {decode} decode, a fresh --cache-none server per run (the checkpoint load "
                  f"included)", whole)
    srv = server()
    try:
        srv.run(graph(16), timeout=3600)   # warm-up: checkpoint, CLIP, VAE and motion module stay loaded
        warm = {frames: measure_run(srv, graph(frames, seed=1 + i)) for i, frames in enumerate((16, 64))}
    finally:
        srv.stop()
    print_rss(f"Sampling + decoding only, {size} px, {decode} decode, one caching server after a warm-up run", warm)


SEAM_SETTINGS = [
    WindowOptions(schedule="static", fuse="pyramid", overlap=0),
    WindowOptions(schedule="static", fuse="flat"),
    WindowOptions(schedule="static", fuse="pyramid"),
    WindowOptions(schedule="uniform", fuse="pyramid"),
    WindowOptions(schedule="uniform", fuse="pyramid", noise="freenoise"),
]


def seams() -> None:
    api = small(load_api(WORKFLOW), 64, 64)
    sampler_key = nodes_of(api, "ADLightning_Sampler")[0]
    options_key = nodes_of(api, "ADLightning_ContextOptions")[0]
    sampler, options = api.pop(sampler_key), api.pop(options_key)
    for node in nodes_of(api, "ADLightning_DecodeFrames"):
        del api[node]
    drop_saves(api)
    saves = []
    for i, setting in enumerate(SEAM_SETTINGS):
        opt_key, sam_key = str(200 + 10 * i), str(201 + 10 * i)
        api[opt_key] = copy.deepcopy(options)
        api[opt_key]["inputs"].update(context_length=setting.length, context_overlap=setting.overlap,
                                      schedule=setting.schedule, fuse_method=setting.fuse, noise=setting.noise)
        api[sam_key] = copy.deepcopy(sampler)
        api[sam_key]["inputs"]["context_options"] = [opt_key, 0]
        saves.append(add_save_latent(api, [sam_key, 0], prefix=f"bench/seams{i}"))
    srv = server("--cache-none")
    try:
        entry = srv.run(api, timeout=7200)
        latents = [saved_latent(srv, entry, s) for s in saves]
    finally:
        srv.stop()
    print(f"| {'setting (64 frames, 64 px, random weights, seed 0)':51s} | seam | peak |")
    print(f"|{'-' * 53}|------|------|")
    for setting, latent in zip(SEAM_SETTINGS, latents):
        layouts = [windows(64, setting, step) for step in range(STEPS)]
        changes = frame_changes(latent)
        label = f"{setting.schedule} {setting.fuse} overlap {setting.overlap} {setting.noise}"
        print(f"| {label:51s} | {seam_ratio(latent, layouts):.2f} | {float(changes.max() / changes.median()):.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["rss", "seams"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--decode", choices=["sliced", "core"], default="sliced",
                        help="rss: the workflow's VAE Decode (long clips), or core's VAE Decode in its place")
    parser.add_argument("--skip-whole", action="store_true", help="rss: only the warmed sampling + decoding runs")
    args = parser.parse_args()
    with open(cache_dir() / "host-tier.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rss(args.size, args.decode, args.skip_whole) if args.what == "rss" else seams()


if __name__ == "__main__":
    main()
