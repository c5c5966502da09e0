"""A benchmark-only custom node: HTTP routes for the compute device's memory figures (how much VRAM a run really took).

Not part of the pack: ComfyServer(memory_route=True) (dev/harness/comfy_server.py) links this folder into the
server's custom_nodes for dev/benchmarks/e2e.py, so a user's server never has these routes.

ComfyUI's /system_stats reports free memory now; a benchmark needs the peak of one run. So:
  GET  /adlightning/memory        -> {"device", "total", "free", "allocated", "peak_allocated", "peak_reserved"}
                                     in bytes
                                     (peaks since the last reset; on a CPU-only server only "device" is filled)
  POST /adlightning/memory/reset  -> restart the peaks (same answer, after the reset)
dev/benchmarks/e2e.py reads it around every run.
"""
from __future__ import annotations

import torch
from aiohttp import web

import comfy.model_management

from server import PromptServer

PREFIX = "/adlightning/memory"


def _device():
    device = comfy.model_management.get_torch_device()
    return device if isinstance(device, torch.device) and device.type == "cuda" else None


def figures() -> dict:
    device = _device()
    if device is None:
        return {"device": str(comfy.model_management.get_torch_device()), "total": None, "free": None, "allocated": None,
                "peak_allocated": None, "peak_reserved": None}
    return {"device": torch.cuda.get_device_name(device), "total": torch.cuda.get_device_properties(device).total_memory,
            "free": torch.cuda.mem_get_info(device)[0], "allocated": torch.cuda.memory_allocated(device),
            "peak_allocated": torch.cuda.max_memory_allocated(device),
            "peak_reserved": torch.cuda.max_memory_reserved(device)}


def reset() -> dict:
    device = _device()
    if device is not None:
        torch.cuda.reset_peak_memory_stats(device)
    return figures()


NODE_CLASS_MAPPINGS = {}   # routes only; ComfyUI loads a custom node folder that has this


def register(routes) -> None:
    """Adds the routes to the running server's table (custom nodes load before its routes are finalised)."""
    @routes.get(PREFIX)
    async def get_memory(request):
        return web.json_response(figures())

    @routes.post(PREFIX + "/reset")
    async def reset_memory(request):
        try:
            return web.json_response(reset())
        except RuntimeError as e:   # an allocator backend without peak statistics
            return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=500)


register(PromptServer.instance.routes)
