"""Random-weight motion-module files in the real key layouts (no downloads, no ComfyUI).

Full-size files (~0.9 GB, fp16 like the Lightning release) are written once into the fixture cache and reused.
"""
from __future__ import annotations

import os
from pathlib import Path

import safetensors.torch
import torch

from adlightning.motion.formats import DIFFUSERS_TO_ORIGINAL
from adlightning.motion.module import MotionConfig, MotionModel, sinusoidal_table


def cache_dir() -> Path:
    """Outside the repo: ADL_TEST_CACHE, else ~/.cache/adlightning-tests."""
    path = Path(os.environ.get("ADL_TEST_CACHE") or Path.home() / ".cache" / "adlightning-tests")
    path.mkdir(parents=True, exist_ok=True)
    return path


def random_state_dict(config: MotionConfig, seed: int = 0, dtype=torch.float16, std: float = 0.02) -> dict:
    """Original-layout state dict: N(0, std) weights, unit norms, sinusoidal position tables as released."""
    with torch.device("meta"):
        reference = MotionModel(config).state_dict()
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, meta in reference.items():
        if key.endswith("pos_encoder.pe"):
            out[key] = sinusoidal_table(meta.shape[1], meta.shape[2])
            continue
        if key.endswith(".weight") and (".norm." in key or ".norms." in key or "ff_norm" in key):
            value = 1.0 + std * torch.randn(meta.shape, generator=gen)
        else:
            value = std * torch.randn(meta.shape, generator=gen)
        out[key] = value.to(dtype)
    return out


def to_diffusers_keys(sd: dict) -> dict:
    """Original keys -> diffusers MotionAdapter keys (567 for a v2 file): the inverse of motion/formats.py's mapping,
    to write diffusers-layout fixtures. The shared position table goes out once per block, as diffusers stores it."""
    out = {}
    for key, value in sd.items():
        new = key.replace(".temporal_transformer", "")
        if ".pos_encoder.pe" in new:
            if ".attention_blocks.0." not in new:
                continue
            new = new.replace(".attention_blocks.0.pos_encoder.pe", ".pos_embed.pe")
            out[new] = value
            continue
        for diffusers_name, original in DIFFUSERS_TO_ORIGINAL:
            new = new.replace(original, diffusers_name)
        out[new] = value
    return out


VARIANTS = {
    # name: (config, layout)
    "v1": (MotionConfig(pe_length=24, has_mid_block=False), "original"),
    "v2": (MotionConfig(pe_length=32, has_mid_block=True), "original"),
    "v3": (MotionConfig(pe_length=32, has_mid_block=False), "original"),
    "lcm": (MotionConfig(pe_length=64, has_mid_block=True), "no-pe"),
    "diffusers": (MotionConfig(pe_length=32, has_mid_block=True), "diffusers"),
}


def variant_state_dict(variant: str, seed: int = 0) -> dict:
    config, layout = VARIANTS[variant]
    sd = random_state_dict(config, seed)
    if layout == "diffusers":
        return to_diffusers_keys(sd)
    if layout == "no-pe":
        return {k: v for k, v in sd.items() if not k.endswith("pos_encoder.pe")}
    return sd


def cached_file(variant: str, name: str | None = None, seed: int = 0) -> Path:
    """A full-size random file of `variant`, saved once under the cache as `name` (default: variant.safetensors)."""
    path = cache_dir() / "animatediff_models" / (name or f"{variant}.safetensors")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        safetensors.torch.save_file(variant_state_dict(variant, seed), str(tmp))
        tmp.replace(path)
    return path


def random_motion_lora(config: MotionConfig, rank: int = 64, seed: int = 0, dtype=torch.float16,
                       std: float = 0.05) -> dict:
    """A motion LoRA in guoyww's original layout: processor.to_{q,k,v,out}_lora.{down,up} on both attentions."""
    with torch.device("meta"):
        model = MotionModel(config)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, weight in model.state_dict().items():
        for proj in ("to_q", "to_k", "to_v", "to_out"):
            suffix = f".{proj}.0.weight" if proj == "to_out" else f".{proj}.weight"
            if ".attention_blocks." in key and key.endswith(suffix):
                attn = key[: -len(suffix)]
                out_dim, in_dim = weight.shape
                out[f"{attn}.processor.{proj}_lora.down.weight"] = (std * torch.randn(rank, in_dim, generator=gen)).to(dtype)
                out[f"{attn}.processor.{proj}_lora.up.weight"] = (std * torch.randn(out_dim, rank, generator=gen)).to(dtype)
    return out


def cached_motion_lora(name: str = "v2_lora_ZoomIn.ckpt", seed: int = 0) -> Path:
    """A full-size rank-64 random motion LoRA saved like guoyww's release (.ckpt, float32, original keys)."""
    path = cache_dir() / "animatediff_motion_lora" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        torch.save(random_motion_lora(MotionConfig(), rank=64, seed=seed, dtype=torch.float32), tmp)
        tmp.replace(path)
    return path
