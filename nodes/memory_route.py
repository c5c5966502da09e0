"""HTTP route for the compute device's memory figures: how much VRAM a run really took.

ComfyUI's /system_stats reports free memory now; a benchmark needs the peak of one run. So:
  GET  /adlightning/memory        -> {"device", "total", "allocated", "peak_allocated", "peak_reserved"} in bytes
                                     (peaks since the last reset; on a CPU-only server only "device" is filled)
  POST /adlightning/memory/reset  -> restart the peaks; body {"limit_bytes": N} also caps this process's CUDA
                                     allocations to N (torch's per-process memory fraction), to check that a run fits
                                     a smaller card; {"limit_bytes": null} lifts the cap.
benchmarks/e2e.py reads it around every run; any client may.
"""
from __future__ import annotations

import logging

import torch
from aiohttp import web

import comfy.model_management

log = logging.getLogger("AnimateDiff-Lightning")
PREFIX = "/adlightning/memory"


def _device():
    device = comfy.model_management.get_torch_device()
    return device if isinstance(device, torch.device) and device.type == "cuda" else None


def figures() -> dict:
    device = _device()
    if device is None:
        return {"device": str(comfy.model_management.get_torch_device()), "total": None, "allocated": None,
                "peak_allocated": None, "peak_reserved": None}
    return {"device": torch.cuda.get_device_name(device), "total": torch.cuda.get_device_properties(device).total_memory,
            "allocated": torch.cuda.memory_allocated(device),
            "peak_allocated": torch.cuda.max_memory_allocated(device),
            "peak_reserved": torch.cuda.max_memory_reserved(device)}


def reset(limit_bytes=None, set_limit: bool = False) -> dict:
    device = _device()
    if device is None:
        return figures()
    if set_limit:
        total = torch.cuda.get_device_properties(device).total_memory
        fraction = 1.0 if limit_bytes is None else min(1.0, float(limit_bytes) / total)
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        log.info("CUDA allocations of this process capped at %.1f GiB", fraction * total / 2**30)
    torch.cuda.reset_peak_memory_stats(device)
    return {**figures(), "limit_bytes": limit_bytes if set_limit else None}


def register() -> None:
    """Adds the routes to the running ComfyUI server (custom nodes load before its routes are finalised)."""
    try:
        from server import PromptServer
    except ImportError:   # the pack imported outside a ComfyUI server: no routes to add
        return
    if getattr(PromptServer, "instance", None) is None:
        return
    routes = PromptServer.instance.routes

    @routes.get(PREFIX)
    async def get_memory(request):
        return web.json_response(figures())

    @routes.post(PREFIX + "/reset")
    async def reset_memory(request):
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object, e.g. {\"limit_bytes\": 12e9}"}, status=400)
        limit = body.get("limit_bytes")
        if limit is not None and (not isinstance(limit, (int, float)) or limit <= 0):
            return web.json_response({"error": "limit_bytes must be a positive number of bytes, or null"}, status=400)
        try:
            return web.json_response(reset(limit, set_limit="limit_bytes" in body))
        except RuntimeError as e:   # an allocator backend without peak stats or limits
            return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=500)
