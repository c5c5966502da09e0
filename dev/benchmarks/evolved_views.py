"""AnimateDiff-Evolved's "views only" context windows, 64 frames against 16 frames, in a real ComfyUI on the CPU.

The same method as the pack's dev/benchmarks/long_clip.py (one server, every case warmed up once, then timed runs in
rounds: t2v16, long64 per round, the KSampler node's seconds from ComfyUI's websocket events), with
AnimateDiff-Evolved's own Gen2 nodes instead of the pack's:

  t2v16   16 frames, no context options
  long64  64 frames, Context Options "Views Only" (ADE_ViewsOnlyContextOptions) fed by View Options "Standard Static"
          (ADE_StandardStaticViewOptions: view_length 16, view_overlap 4)

Both: CheckpointLoaderSimple -> ADE_LoadAnimateDiffModel (the Lightning 4-step fixture) ->
ADE_ApplyAnimateDiffModelSimple -> ADE_UseEvolvedSampling (beta_schedule "sqrt_linear (AnimateDiff)") -> KSampler
(euler, sgm_uniform, 4 steps, cfg 1.0, denoise 1.0) -> VAEDecode -> CreateVideo -> SaveVideo, at --size px.

The server loads AnimateDiff-Evolved from --comfyui's custom_nodes (an extra custom_nodes path, since the harness
gives ComfyUI a temporary --base-directory) and NOT the Lightning pack (an empty stand-in takes the pack's slot). Set
it up once, outside this repository (AnimateDiff-Evolved is not ours to ship):

    cp -a /path/to/ComfyUI /path/to/ComfyUI-ade
    git clone https://github.com/Kosinkadink/ComfyUI-AnimateDiff-Evolved \\
        /path/to/ComfyUI-ade/custom_nodes/ComfyUI-AnimateDiff-Evolved
    flock ~/.cache/adlightning-tests/host-tier.lock \\
        python -m dev.benchmarks.evolved_views --comfyui /path/to/ComfyUI-ade [--rounds 3] [--size 64]

Run it next to `python -m dev.benchmarks.long_clip --cases t2v_16 long_64` on the same quiet machine: the ratio moves
with the machine's state, so only figures of the same hour compare. --rounds 0: warm-ups only (a smoke run).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dev.benchmarks.long_clip import print_table, run_rounds
from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import sampler_id
from dev.harness.models import CHECKPOINT_NAME, LIGHTNING_NAME, model_files

FRAMES = {"t2v16": 16, "long64": 64}


def graph(frames: int, size: int, views: bool, fuse: str) -> dict:
    api = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAME}},
        "2": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a corgi running on the beach at sunset, waves, golden light", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality, watermark", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": frames}},
        "5": {"class_type": "ADE_LoadAnimateDiffModel", "inputs": {"model_name": LIGHTNING_NAME}},
        "6": {"class_type": "ADE_ApplyAnimateDiffModelSimple", "inputs": {"motion_model": ["5", 0]}},
        "7": {"class_type": "ADE_UseEvolvedSampling",
              "inputs": {"model": ["1", 0], "m_models": ["6", 0], "beta_schedule": "sqrt_linear (AnimateDiff)"}},
        "8": {"class_type": "KSampler",
              "inputs": {"model": ["7", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
                         "seed": 0, "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "sgm_uniform",
                         "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "CreateVideo", "inputs": {"images": ["9", 0], "fps": 8.0}},
        "11": {"class_type": "SaveVideo",
               "inputs": {"video": ["10", 0], "filename_prefix": "ade_bench/clip", "format": "auto",
                          "codec": "auto"}},
    }
    if views:
        api["12"] = {"class_type": "ADE_StandardStaticViewOptions",
                     "inputs": {"view_length": 16, "view_overlap": 4, "fuse_method": fuse}}
        api["13"] = {"class_type": "ADE_ViewsOnlyContextOptions",
                     "inputs": {"view_opts_req": ["12", 0], "start_percent": 0.0, "guarantee_steps": 1}}
        api["7"]["inputs"]["context_options"] = ["13", 0]
    return api


def ade_commit(comfyui: str) -> str:
    """The AnimateDiff-Evolved checkout's commit (a git clone's HEAD, or a .commit file an archive was given)."""
    for folder in (Path(comfyui) / "custom_nodes").glob("*AnimateDiff-Evolved*"):
        git = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
        if git.returncode == 0:
            return git.stdout.strip()
        if (folder / ".commit").is_file():
            return (folder / ".commit").read_text().strip()
    return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comfyui", required=True, help="a ComfyUI with AnimateDiff-Evolved in custom_nodes")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (0: warm-ups only)")
    parser.add_argument("--fuse", default="pyramid",
                        help="Standard Static view options' fuse_method (default pyramid, the node's UI default)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    prompts = {"t2v16": graph(16, args.size, False, args.fuse), "long64": graph(64, args.size, True, args.fuse)}
    scratch = Path(tempfile.mkdtemp(prefix="ade-bench-"))
    extra = scratch / "extra_paths.yaml"
    extra.write_text(f"ade_bench:\n  custom_nodes: {Path(args.comfyui) / 'custom_nodes'}\n")
    no_pack = scratch / "no_pack"   # an empty package in the pack's slot: AnimateDiff-Evolved alone in the process
    no_pack.mkdir()
    (no_pack / "__init__.py").write_text("")
    server = ComfyServer(args.comfyui, model_files(args.comfyui), extra_args=["--extra-model-paths-config", str(extra)],
                         cpu=True, memory_route=True, pack=no_pack)
    results = {name: [] for name in prompts}
    try:
        server.wait_ready()
        names = set(server.get("/object_info", timeout=120))
        missing = {v["class_type"] for api in prompts.values() for v in api.values()} - names
        if missing:
            raise RuntimeError(f"the server lacks nodes {sorted(missing)} (AnimateDiff-Evolved not loaded?)")
        print(f"ComfyUI {args.comfyui}, AnimateDiff-Evolved {ade_commit(args.comfyui)}, CPU, {os.cpu_count()} cores, "
              f"{args.size} px, {args.rounds} rounds, fuse {args.fuse}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
        run_rounds(server, prompts, results, args.rounds, args.timeout, "ade-long-clip")
    except Exception:
        print(server.log()[-3000:], file=sys.stderr)
        raise
    finally:
        log = server.log()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    warm = {name: [s for node, _, s in results[name][0]["nodes"] if node == sampler_id(prompts[name])]
            for name in prompts if results[name]}
    print("\nwarm-up sampler s: " + ", ".join(f"{n} {s[0]:.2f}" for n, s in warm.items() if s))
    notes = [line for line in log.splitlines() if "[AnimateDiffEvo]" in line or "IMPORT FAILED" in line
             or ("seconds" in line and "custom_nodes" in line)]
    if notes:
        print("server log (custom nodes, AnimateDiff-Evolved):\n  " + "\n  ".join(notes[:12]))
    if args.rounds == 0:
        return 0
    sampler, med, _ = print_table(prompts, results, FRAMES)
    per_round = [a / b for a, b in zip(sampler["long64"], sampler["t2v16"])]
    print(f"long64 / t2v16 sampler (AnimateDiff-Evolved views only, static 16/4): x{med['long64'] / med['t2v16']:.2f} "
          f"of medians; per round {', '.join(f'x{r:.2f}' for r in per_round)}; "
          f"median of per-round ratios x{statistics.median(per_round):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
