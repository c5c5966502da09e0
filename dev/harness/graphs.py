"""Load the shipped API workflows and edit them for tests and benchmarks (size, save a latent, drop the motion
module)."""
from __future__ import annotations

import copy
import json

import numpy as np
import safetensors.torch

from dev.harness.comfy_server import REPO, ComfyServer
from tools.client import apply_overrides


def load_api(name: str) -> dict:
    """The API-format twin of workflows/<name>.json (kept in workflows/api/ so ComfyUI's Templates browser, which
    lists every workflows/*.json, shows only the UI-format files)."""
    return json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())


def nodes_of(api: dict, class_type: str) -> list[str]:
    return [k for k, v in api.items() if v["class_type"] == class_type]


# The shipped workflows' output: Create Video (frames + frame rate) -> Save Video (H.264 MP4). Tests that only want
# latents or frames drop both.
SAVE_TYPES = ("CreateVideo", "SaveVideo", "SaveAnimatedWEBP")


def drop_saves(api: dict) -> dict:
    """The graph without its video output nodes (edited in place, returned for chaining)."""
    for node in [k for k, v in api.items() if v["class_type"] in SAVE_TYPES]:
        del api[node]
    return api


def read_video(path) -> tuple[np.ndarray, float]:
    """(frames as (N, H, W, 3) uint8 RGB, frames per second) of a saved video file, decoded with PyAV (which
    ComfyUI's video nodes use, so it is installed wherever ComfyUI is)."""
    import av   # here, not at the top: only the tests that read a video need it
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        fps = float(stream.average_rate or stream.guessed_rate)
    return np.stack(frames), fps


def small(api: dict, size: int = 64, frames: int | None = None) -> dict:
    """A copy of the graph at test size: the client's --size (and --frames, if given) overrides, nothing added (a
    long clip keeps whatever windows the graph has, or none)."""
    return apply_overrides(api, frames=frames, size=str(size), windows=False)


def add_save_latent(api: dict, source: list, prefix: str = "test/latent") -> str:
    node = str(max(int(k) for k in api if k.isdigit()) + 1)
    api[node] = {"class_type": "SaveLatent", "inputs": {"samples": source, "filename_prefix": prefix}}
    return node


def read_latents(server: ComfyServer, entry: dict):
    files = server.output_files(entry, kind="latents")
    assert files, f"no latent saved: {entry.get('outputs')}"
    return [safetensors.torch.load_file(str(f))["latent_tensor"] for f in files]


def sampler_id(api: dict) -> str:
    return (nodes_of(api, "ADLightning_Sampler") + nodes_of(api, "KSampler"))[0]


def without_motion(api: dict) -> dict:
    """The same graph with the Apply node bypassed: the sampler gets the checkpoint's MODEL directly."""
    api = copy.deepcopy(api)
    apply = nodes_of(api, "ADLightning_ApplyMotionModule")[0]
    api[sampler_id(api)]["inputs"]["model"] = api[apply]["inputs"]["model"]
    api[sampler_id(api)]["inputs"]["steps"] = api[sampler_id(api)]["inputs"]["steps"] or 4  # no file to take N from
    for node in (apply, nodes_of(api, "ADLightning_LoadMotionModule")[0]):
        del api[node]
    return api
