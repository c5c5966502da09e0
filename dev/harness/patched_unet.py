"""ComfyUI's own SD1.5-layout UNet in this process, with the pack's temporal modules inserted exactly where and how
nodes/motion_patch.py inserts them (its _inject, its forward_timestep_embed handler), without a server.

Import with the ComfyUI tree importable (PYTHONPATH=$COMFYUI_PATH); used by tests/host/compile_probe.py and
dev/benchmarks/unet_ratio.py. Random weights (make_sd15.fill_random).
"""
from __future__ import annotations

import importlib
import types

import torch


def pack_modules():
    """(nodes.motion_patch, motion.module) of the pack (`adlightning`, see tools/__init__.py), imported with ComfyUI's
    --cpu settled first where torch sees no GPU (comfy.model_management reads it when first imported)."""
    from comfy.cli_args import args
    args.cpu = args.cpu or not torch.cuda.is_available()
    return importlib.import_module("adlightning.nodes.motion_patch"), importlib.import_module("adlightning.motion.module")


def build(model_channels: int = 320, context_dim: int = 768, seed: int = 0, dtype=torch.float32, device="cpu"):
    """(ComfyUI UNet, motion model of matching widths), the modules not yet inserted (see insert())."""
    _, module = pack_modules()   # first: it settles ComfyUI's --cpu before comfy.model_management is imported
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    from .make_sd15 import SD15_UNET, fill_random
    config = {k: v for k, v in SD15_UNET.items() if k not in ("use_temporal_attention", "use_temporal_resblock")}
    config.update(model_channels=model_channels, context_dim=context_dim)
    unet = UNetModel(**config, operations=comfy.ops.disable_weight_init).eval().requires_grad_(False)
    fill_random(unet, torch.Generator().manual_seed(seed))
    widths = tuple(model_channels * m for m in config["channel_mult"])
    motion = module.MotionModel(module.MotionConfig(down_channels=widths, mid_channels=widths[-1]),
                                ops=comfy.ops.disable_weight_init).eval().requires_grad_(False)
    fill_random(motion, torch.Generator().manual_seed(seed + 1))
    for layer in motion.modules():
        if hasattr(layer, "pe"):
            layer.pe = module.sinusoidal_table(layer.pe.shape[1], layer.pe.shape[2])
    unet.to(device, dtype)
    motion.to(device, dtype)
    return unet, motion


def insert(unet, motion) -> None:
    """Put the temporal modules into the UNet's blocks through the pack's own injection."""
    patch, _ = pack_modules()

    class Patcher:   # what _inject reads from a ModelPatcher
        model = types.SimpleNamespace(diffusion_model=unet)

        def get_additional_models_with_key(self, key):
            return [types.SimpleNamespace(model=motion)]

    patch._inject(Patcher())


def transformer_options(conds: int = 1) -> dict:
    """What ComfyUI hands the UNet: the pack's forward_timestep_embed patch and the cond/uncond layout."""
    patch, module = pack_modules()
    return {"patches": {"forward_timestep_embed_patch": [(module.VanillaTemporalModule, patch._run_temporal)]},
            "cond_or_uncond": list(range(conds))}
