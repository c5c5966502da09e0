"""Context windows in a real ComfyUI (COMFYUI_PATH, random-weight models from the host-tier fixture cache).

    COMFYUI_PATH=/opt/hosts/ComfyUI python benchmarks/window_host.py rss [--size 64]
        Peak RSS of the shipped 64-frame workflow at 16 and at 64 frames, each in a fresh server (VmHWM only grows),
        plus the largest RSS sampled while the sampler and the VAE decode ran, and wall time.
    COMFYUI_PATH=/opt/hosts/ComfyUI python benchmarks/window_host.py seams
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samplers.seams import frame_changes, seam_ratio  # noqa: E402
from samplers.windows import WindowOptions, windows  # noqa: E402
from tests.fixtures.motion_files import cache_dir  # noqa: E402
from tests.host.comfy_server import ComfyServer  # noqa: E402
from tests.host.conftest import add_save_latent, load_api, model_files, nodes_of, small  # noqa: E402
from tests.host.listener import Listener, saved_latent  # noqa: E402

WORKFLOW = "t2v_long_64"
STEPS = 4
GIB = 2 ** 30


def server() -> ComfyServer:
    srv = ComfyServer(os.environ["COMFYUI_PATH"], model_files(), extra_args=["--cache-none"])
    srv.wait_ready()
    return srv


def rss(size: int) -> None:
    print(f"| frames | peak RSS (VmHWM) | while sampling | while VAE decoding | wall |  ({size} px, fresh server each)")
    print("|--------|------------------|----------------|--------------------|------|")
    peaks = {}
    for frames in (16, 64):
        api = small(load_api(WORKFLOW), size, frames)
        sampler, decode = nodes_of(api, "ADLightning_Sampler")[0], nodes_of(api, "VAEDecode")[0]
        srv = server()
        try:
            with Listener(srv, poll_rss=True) as listener:
                start = time.time()
                srv.wait(listener.queue(api), timeout=3600)
                wall = time.time() - start
            peaks[frames] = srv.peak_rss_bytes()
            print(f"| {frames:6d} | {peaks[frames] / GIB:12.2f} GiB | {listener.rss_by_node.get(sampler, 0) / GIB:10.2f} "
                  f"GiB | {listener.rss_by_node.get(decode, 0) / GIB:14.2f} GiB | {wall:4.0f} s |", flush=True)
        finally:
            srv.stop()
    print(f"64 / 16 frames peak RSS: {peaks[64] / peaks[16]:.3f}")


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
    for node in nodes_of(api, "VAEDecode") + nodes_of(api, "SaveAnimatedWEBP"):
        del api[node]
    saves = []
    for i, setting in enumerate(SEAM_SETTINGS):
        opt_key, sam_key = str(200 + 10 * i), str(201 + 10 * i)
        api[opt_key] = copy.deepcopy(options)
        api[opt_key]["inputs"].update(context_length=setting.length, context_overlap=setting.overlap,
                                      schedule=setting.schedule, fuse_method=setting.fuse, noise=setting.noise)
        api[sam_key] = copy.deepcopy(sampler)
        api[sam_key]["inputs"]["context_options"] = [opt_key, 0]
        saves.append(add_save_latent(api, [sam_key, 0], prefix=f"bench/seams{i}"))
    srv = server()
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
    args = parser.parse_args()
    with open(cache_dir() / "host-tier.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rss(args.size) if args.what == "rss" else seams()


if __name__ == "__main__":
    main()
