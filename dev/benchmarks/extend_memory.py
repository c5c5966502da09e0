"""Memory of a long clip made as extended chunks (Extend Video), in a real ComfyUI (COMFYUI_PATH, random-weight
models from the host-tier fixture cache).

    flock ~/.cache/adlightning-tests/host-tier.lock \\
        env COMFYUI_PATH=/opt/hosts/ComfyUI python -m dev.benchmarks.extend_memory \\
        [--chunks 11] [--frames 16] [--size 64] [--cache-none]

One server, with ComfyUI's default cache as a user's server runs (--cache-none reloads the models for every prompt,
so its peak follows when Python frees the last prompt's models, not the chunks). Chunk 0 is t2v_lightning with a
Save Latent; every later chunk is what the client's and the app page's streams queue (tools/client.py
stream_chunk): Load Latent of the previous chunk, Extend Video (the last 4 frames pinned), the sampler, Join Chunks,
decode and save only the new frames. Peak RSS (VmHWM) is reset after a warm-up (a first chunk and an extended one:
models loaded, both graphs run once), then measured over one chunk and over all chunks: the clip should peak no
higher than one chunk plus the extra decoded frames themselves (no per-chunk growth). 11 chunks of 16 at overlap 4
are 16 + 10 x 12 = 136 frames, the first length past 128.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import load_api
from dev.harness.models import model_files
from tools.client import STREAM_OVERLAP, apply_overrides, saved_latent, stream_chunk

MIB = 2 ** 20


def chunk_graph(index: int, previous: str | None, frames: int, size: int, seed: int) -> dict:
    base = apply_overrides(load_api("t2v_lightning"), frames=frames, size=str(size), seed=seed, windows=False)
    return stream_chunk(base, index, previous, "extend_memory")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=11)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-none", action="store_true", help="run the server with --cache-none")
    args = parser.parse_args(argv)
    if not os.environ.get("COMFYUI_PATH"):
        print("set COMFYUI_PATH to a ComfyUI checkout", file=sys.stderr)
        return 2
    comfy = os.environ["COMFYUI_PATH"]
    with ComfyServer(comfy, model_files(comfy), extra_args=["--cache-none"] if args.cache_none else []) as srv:
        # Warm-up: a first chunk and an extended one, so models are loaded and both graphs have run once.
        warm = saved_latent(srv.run(chunk_graph(0, None, args.frames, args.size, args.seed + 1)))
        srv.run(chunk_graph(1, warm, args.frames, args.size, args.seed + 1))
        peaks, walls, rss, previous = [], [], [], None
        srv.reset_peak_rss()
        for index in range(args.chunks):
            start = time.time()
            entry = srv.run(chunk_graph(index, previous, args.frames, args.size, args.seed), timeout=3600)
            walls.append(time.time() - start)
            previous = saved_latent(entry)
            assert previous, f"chunk {index} saved no latent: {entry.get('outputs')}"
            peaks.append(srv.peak_rss_bytes())
            rss.append(srv.rss_bytes())
        total = args.frames + (args.chunks - 1) * (args.frames - STREAM_OVERLAP)
        new_frames = total - args.frames
        extra = new_frames * args.size * args.size * 3 * 4   # float32 IMAGE frames beyond the first chunk's
        one, whole = peaks[0], peaks[-1]
        print(f"clip: {total} frames as {args.chunks} chunks of {args.frames} (overlap {STREAM_OVERLAP}), "
              f"{args.size}x{args.size} px, ComfyUI {comfy}")
        print(f"peak RSS after chunk 0 (one {args.frames}-frame chunk): {one / MIB:.1f} MiB")
        print("peak RSS after each chunk: " + ", ".join(f"{p / MIB:.1f}" for p in peaks) + " MiB")
        print(f"growth over {args.chunks} chunks: {(whole - one) / MIB:.2f} MiB; extra decoded frames "
              f"({new_frames} x {args.size}x{args.size}x3 float32): {extra / MIB:.2f} MiB")
        print("RSS after each chunk: " + ", ".join(f"{r / MIB:.1f}" for r in rss) + " MiB")
        print("wall per chunk: " + ", ".join(f"{w:.1f}" for w in walls) + " s")
        ok = whole - one <= extra
        print("PASS: no per-chunk growth beyond the extra decoded frames" if ok else
              "FAIL: peak RSS grew beyond the extra decoded frames")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
