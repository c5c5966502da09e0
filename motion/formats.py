"""Recognise motion-module state dicts and bring them to the original AnimateDiff key layout.

Tensors alone cannot tell Lightning from AnimateDiff v2 (same layout, same shapes), so the Lightning step count comes
from the file name or, failing that, from the SHA-256 of the eight official files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .module import SD15_DOWN_CHANNELS, MotionConfig, MotionModel, MotionModuleError, sinusoidal_table

# ByteDance/AnimateDiff-Lightning, commit 640952e ("Add safetensors"): name -> (sha256, size in bytes).
OFFICIAL_LIGHTNING_FILES = {
    "animatediff_lightning_1step_comfyui.safetensors":
        ("5f45da3a6ffa5edbc868f577a875a0e0d6cdc6f8048dbbd17a13bc93ccf34393", 908929664),
    "animatediff_lightning_2step_comfyui.safetensors":
        ("29b4879520056657b897f48821760285b3eef371576e80c86c2ef1fdf95f6c1d", 908929664),
    "animatediff_lightning_4step_comfyui.safetensors":
        ("aeb66ae8ff4a868d31379c3bde3e5e7e510a4d4b565a06ee4f1297e93a561dc5", 908929664),
    "animatediff_lightning_8step_comfyui.safetensors":
        ("5173ea8209053dd5de9b973baefac1801fbe7a433d07fa0122664121751885cf", 908929664),
    "animatediff_lightning_1step_diffusers.safetensors":
        ("ca4ea6e68f4634d72c222de2b0187c3a31f00278a55868420b4e66b987bb7ccb", 907702248),
    "animatediff_lightning_2step_diffusers.safetensors":
        ("fbd62904484d3e0842aa6c2f12d919ef91bacac45d36b1a13ae1ba10b5da4fdd", 907702248),
    "animatediff_lightning_4step_diffusers.safetensors":
        ("8f3330914edd8fc2ee5659e6944323858feb0ec21cc913789202d043f69b5e17", 907702248),
    "animatediff_lightning_8step_diffusers.safetensors":
        ("849e93641e2ae7dde37fb312747a5e8671920bddf5a8d27757ac7b1699571a96", 907702248),
}
LIGHTNING_BY_SHA256 = {sha: name for name, (sha, _) in OFFICIAL_LIGHTNING_FILES.items()}
LIGHTNING_SIZES = {size for _, size in OFFICIAL_LIGHTNING_FILES.values()}

# Renamed copies keep "lightning" and the step count in some form: animatediff-lightning-4steps-1.5.safetensors,
# AnimateDiff_Lightning_8step.safetensors, ...
_LIGHTNING_NAME = re.compile(r"lightning[^0-9]*?([1248])[ _-]?steps?(?![0-9])", re.IGNORECASE)

# diffusers MotionAdapter names -> original AnimateDiff names (the inverse of diffusers' conversion script).
DIFFUSERS_TO_ORIGINAL = (
    (".attn1.", ".attention_blocks.0."),
    (".attn2.", ".attention_blocks.1."),
    (".norm1.", ".norms.0."),
    (".norm2.", ".norms.1."),
    (".norm3.", ".ff_norm."),
)
_MODULE_PREFIX = re.compile(r"^((?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.\d+\.")


@dataclass(frozen=True)
class MotionInfo:
    """What the loader found in a file; shown to the user and used to pick sampler defaults."""
    name: str
    family: str            # "Lightning", "AnimateDiff", "AnimateLCM"
    version: str           # "v1", "v2", "v3"
    layout: str            # "original" or "diffusers"
    pe_length: int
    has_mid_block: bool
    lightning_steps: int | None = None
    step_source: str | None = None   # "file name" or "sha256"
    tensors: int = 0

    def report(self) -> str:
        what = f"{self.family} {self.version}"
        if self.lightning_steps:
            what = f"Lightning {self.lightning_steps}-step ({self.version} layout, step count from {self.step_source})"
        return (f"{self.name}: {what}, {self.layout} keys, {self.tensors} tensors, "
                f"{'with' if self.has_mid_block else 'no'} mid block, position table {self.pe_length} frames")


def lightning_steps_from_name(name: str) -> int | None:
    match = _LIGHTNING_NAME.search(name.replace("\\", "/").rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def _fail(name: str, what: str, fix: str) -> MotionModuleError:
    return MotionModuleError(f"'{name}' {what}. {fix}")


def _reject_non_sd15_modules(sd: dict, name: str) -> None:
    keys = list(sd)
    if any("temporal_attentions." in k or k.endswith("pos_encoder.positional_encoding") for k in keys):
        raise _fail(name, "is a HotshotXL (SDXL) temporal model", "This pack animates SD1.5 checkpoints; "
                    "use an SD1.5 motion module such as animatediff_lightning_4step_comfyui.safetensors.")
    if any(k.startswith(("conv_in.", "img_encoder.", "fps_embedding.", "motion_embedding.", "camera_encoder."))
           for k in keys):
        raise _fail(name, "is a PIA / AnimateLCM-I2V / FancyVideo / CameraCtrl-style model with extra image inputs",
                    "Only plain text-to-video motion modules are supported; load a Lightning, AnimateDiff "
                    "v1/v2/v3 or AnimateLCM-T2V module.")
    down = {int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.(\d+)\.motion_modules\.", k))}
    if down and max(down) == 2:
        raise _fail(name, "is an SDXL motion module (3 down blocks, e.g. mm_sdxl_v10_beta)",
                    "This pack animates SD1.5 checkpoints; use an SD1.5 motion module.")


def _explain_non_motion_file(sd: dict, name: str) -> MotionModuleError:
    keys = list(sd)
    loraish = [k for k in keys if "lora" in k.lower()]
    if loraish and any("motion_modules" in k for k in loraish):
        return _fail(name, "is a motion LoRA, not a motion module",
                     "Put it in models/animatediff_motion_lora and attach it with the Motion LoRA node.")
    if loraish or any(k.startswith(("lora_unet_", "lora_te_")) for k in keys):
        return _fail(name, "is an image LoRA or spatial adapter (such as v3_sd15_adapter), not a motion module",
                     "Load it with ComfyUI's LoraLoaderModelOnly onto the checkpoint; pair it with a motion module.")
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys):
        return _fail(name, "is a Stable Diffusion checkpoint, not a motion module",
                     "Load it with Load Checkpoint; put motion modules in models/animatediff_models.")
    if any("controlnet" in k or k.startswith(("input_hint_block.", "zero_convs.")) for k in keys):
        return _fail(name, "is a ControlNet / SparseCtrl model, not a motion module",
                     "Load it with a ControlNet loader.")
    sample = ", ".join(keys[:3]) if keys else "no tensors at all"
    return _fail(name, f"holds no AnimateDiff temporal layers (first keys: {sample})",
                 "Choose an AnimateDiff motion module file (.safetensors with down_blocks.*.motion_modules.* keys).")


def original_key(key: str) -> str:
    """One diffusers MotionAdapter key (or a key already in the original layout) in the original layout."""
    m = _MODULE_PREFIX.match(key)
    if m is None or key[m.end():].startswith("temporal_transformer."):
        return key
    rest = "." + key[m.end():]
    for old, new in DIFFUSERS_TO_ORIGINAL:
        rest = rest.replace(old, new)
    return f"{m.group(0)}temporal_transformer{rest}"


def _to_original_keys(sd: dict) -> dict:
    """diffusers MotionAdapter keys -> original keys; the one shared `pos_embed.pe` per block feeds both attentions."""
    out = {}
    for key, value in sd.items():
        m = _MODULE_PREFIX.match(key)
        rest = key[m.end():]
        if rest.startswith("transformer_blocks.") and rest.endswith(".pos_embed.pe"):
            block = rest[: -len(".pos_embed.pe")]
            for a in (0, 1):
                out[f"{m.group(0)}temporal_transformer.{block}.attention_blocks.{a}.pos_encoder.pe"] = value
            continue
        out[original_key(key)] = value
    return out


def expected_keys(config: MotionConfig) -> dict:
    """key -> shape of the state dict a file with this config must provide (original layout)."""
    with torch.device("meta"):
        model = MotionModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def normalize(sd: dict, name: str) -> tuple[dict, MotionConfig, MotionInfo]:
    """Validate a raw state dict and return (original-layout state dict, config, info).

    Raises MotionModuleError naming the file and what it is when it is not a usable SD1.5 motion module.
    """
    _reject_non_sd15_modules(sd, name)
    temporal = {k: v for k, v in sd.items() if _MODULE_PREFIX.match(k)}
    if not temporal:
        raise _explain_non_motion_file(sd, name)
    if any("lora" in k.lower() for k in temporal):
        raise _explain_non_motion_file(temporal, name)
    if any(".temporal_transformer." in k for k in temporal):
        layout = "original"
    elif any(".transformer_blocks." in k and ".attn1." in k for k in temporal):
        layout = "diffusers"
        temporal = _to_original_keys(temporal)
    else:
        raise _explain_non_motion_file(sd, name)

    pe_keys = [k for k in temporal if k.endswith("pos_encoder.pe")]
    has_mid = any(k.startswith("mid_block.") for k in temporal)
    family = "AnimateDiff"
    if pe_keys:
        pe_length = int(temporal[pe_keys[0]].shape[1])
    elif layout == "original":
        # AnimateLCM-T2V ships no position tables; AnimateDiff-Evolved and its users run it with a 64-frame one.
        family, pe_length = "AnimateLCM", 64
    else:
        pe_length = 32  # diffusers MotionAdapter default (motion_max_seq_length)
    version = "v2" if has_mid else ("v3" if pe_length == 32 else "v1")

    down_channels = []
    for i in range(len(SD15_DOWN_CHANNELS)):
        w = temporal.get(f"down_blocks.{i}.motion_modules.0.temporal_transformer.norm.weight")
        if w is None:
            raise _fail(name, f"is incomplete: down block {i} has no temporal module",
                        "Download the file again (it may be truncated) or choose another motion module.")
        down_channels.append(int(w.shape[0]))
    config = MotionConfig(pe_length=pe_length, has_mid_block=has_mid, down_channels=tuple(down_channels))

    want = expected_keys(config)
    if not pe_keys:
        for key, shape in want.items():
            if key.endswith("pos_encoder.pe"):
                temporal[key] = sinusoidal_table(shape[1], shape[2])
    missing = [k for k in want if k not in temporal]
    if missing:
        raise _fail(name, f"is incomplete: {len(missing)} of {len(want)} tensors are missing (first: {missing[0]})",
                    "Download the file again (it may be truncated) or choose another motion module.")
    bad = [k for k, shape in want.items() if tuple(temporal[k].shape) != shape]
    if bad:
        k = bad[0]
        raise _fail(name, f"has {len(bad)} tensors of unexpected shape ({k}: {tuple(temporal[k].shape)}, "
                    f"expected {want[k]})", "This is not an SD1.5 AnimateDiff motion module.")
    unexpected = [k for k in temporal if k not in want]
    if unexpected:
        raise _fail(name, f"has {len(unexpected)} temporal tensors this pack does not know (first: {unexpected[0]})",
                    "It may be a newer motion-module variant; AnimateDiff v1/v2/v3, AnimateLCM and Lightning work.")

    steps = lightning_steps_from_name(name)
    info = MotionInfo(name=name, family="Lightning" if steps else family, version=version, layout=layout,
                      pe_length=pe_length, has_mid_block=has_mid, lightning_steps=steps,
                      step_source="file name" if steps else None, tensors=len(sd))
    return {k: temporal[k] for k in want}, config, info


def with_sha256(info: MotionInfo, sha256: str) -> MotionInfo:
    """Fill in the Lightning step count from an official file's hash when the name did not give it."""
    official = LIGHTNING_BY_SHA256.get(sha256)
    if official is None or info.lightning_steps:
        return info
    steps = lightning_steps_from_name(official)
    return MotionInfo(**{**info.__dict__, "family": "Lightning", "lightning_steps": steps, "step_source": "sha256"})
