"""Load the shipped API workflows and edit them for tests and benchmarks (size, save a latent, drop the motion
module)."""
from __future__ import annotations

import copy
import json

import safetensors.torch

from harness.comfy_server import REPO, ComfyServer
from workflows.client import apply_overrides


def load_api(name: str) -> dict:
    """The API-format twin of workflows/<name>.json (kept in workflows/api/ so ComfyUI's Templates browser, which
    lists every workflows/*.json, shows only the UI-format files)."""
    return json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())


def nodes_of(api: dict, class_type: str) -> list[str]:
    return [k for k, v in api.items() if v["class_type"] == class_type]


def small(api: dict, size: int = 64, frames: int | None = None) -> dict:
    """A copy of the graph at test size: the client's --size (and --frames, if given) overrides."""
    return apply_overrides(api, frames=frames, size=str(size))


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
