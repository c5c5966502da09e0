"""ComfyUI side of the motion module: wrap it in a ModelPatcher and attach it to an SD1.5 MODEL clone.

Everything goes through ModelPatcher extension points, so nothing global changes and the input MODEL stays as it was:
  * additional model: ComfyUI's memory manager loads/offloads the motion module together with the UNet;
  * injections: the temporal modules are inserted into the UNet's blocks when this clone is loaded and removed when it
    is unloaded or another clone of the same UNet is loaded;
  * forward_timestep_embed_patch: ComfyUI hands our inserted layers to us with transformer_options, from which the
    frame count is read (latents per cond / number of conds), so cfg 1 (cond only) and cfg > 1 both work; the motion
    scale (motion/scale.py) is applied there too, to each module's residual, per frame of core's context window;
  * object patch: model_sampling switched to sqrt_linear, the schedule AnimateDiff was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import comfy.model_management
import comfy.model_patcher
import comfy.ops
import comfy.patcher_extension
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock

from ..motion.formats import MotionInfo
from ..motion.lora import LoRASet
from ..motion.loader import load_motion_module
from ..motion.module import MotionModel, MotionModuleError, VanillaTemporalModule
from ..motion.scale import MotionScale, blend, window_scales

KEY = "adlightning_motion"   # additional-models / injections / attachments key
LORA_KEY = "adlightning_motion_lora"   # transformer_options entry: the motion.lora.LoRASet of this MODEL
SCALE_KEY = "adlightning_motion_scale"   # transformer_options entry: the motion.scale.MotionScale of this MODEL


@dataclass(frozen=True)
class MotionHandle:
    """What flows along the pack's MOTION_MODEL wire: the loaded module and the Motion LoRAs stacked on it."""
    patcher: comfy.model_patcher.ModelPatcher
    info: MotionInfo
    loras: tuple = field(default=())   # ((MotionLoRA, strength), ...) from the Motion LoRA node

    def with_lora(self, lora, strength: float) -> "MotionHandle":
        return replace(self, loras=self.loras + ((lora, strength),))

    def lora_set(self) -> LoRASet:
        return LoRASet(self.patcher.model, list(self.loras))


def load_handle(path: str) -> MotionHandle:
    load_device = comfy.model_management.get_torch_device()
    dtype = comfy.model_management.unet_dtype(device=load_device)
    # manual_cast when this device cannot compute in the storage dtype; either ops class lets ComfyUI's lowvram
    # mode stream weights and apply weight patches (Motion LoRA) the same way it does for the UNet.
    ops = comfy.ops.manual_cast if comfy.model_management.unet_manual_cast(dtype, load_device) else \
        comfy.ops.disable_weight_init
    model, info = load_motion_module(path, dtype=dtype, ops=ops)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                               offload_device=comfy.model_management.unet_offload_device())
    return MotionHandle(patcher=patcher, info=info)


def _unet(model_patcher):
    return model_patcher.model.diffusion_model


def _block(unet, part: str, index: int):
    if part == "input":
        return unet.input_blocks[index]
    if part == "middle":
        return unet.middle_block
    return unet.output_blocks[index]


def _insert_at(block) -> int:
    """After the block's last SpatialTransformer, else after its first ResBlock (the original UNet3D order)."""
    layers = list(block)
    attn = [i for i, layer in enumerate(layers) if isinstance(layer, SpatialTransformer)]
    if attn:
        return attn[-1] + 1
    res = [i for i, layer in enumerate(layers) if isinstance(layer, ResBlock)]
    if res:
        return res[0] + 1
    raise MotionModuleError("UNet block has neither attention nor ResBlock; this is not an SD1.5 UNet")


def check_unet(model_patcher, motion: MotionModel, name: str) -> None:
    """Refuse MODELs whose blocks do not match the motion module's widths (SDXL, SD3, Flux, ...)."""
    unet = getattr(model_patcher.model, "diffusion_model", None)
    kind = type(model_patcher.model).__name__
    if unet is None or not all(hasattr(unet, a) for a in ("input_blocks", "middle_block", "output_blocks")):
        raise MotionModuleError(f"'{name}' needs an SD1.5 MODEL (UNet); got {kind}, which has no UNet blocks")
    context_dim = getattr(model_patcher.model, "model_config", None)
    context_dim = getattr(context_dim, "unet_config", {}).get("context_dim")
    try:
        for part, index, module in motion.placements():
            block = _block(unet, part, index)
            res = next(layer for layer in block if isinstance(layer, ResBlock))
            dim = module.temporal_transformer.proj_in.in_features
            if res.out_channels != dim:
                raise ValueError
    except (IndexError, StopIteration, ValueError):
        raise MotionModuleError(
            f"'{name}' is an SD1.5 motion module but this MODEL ({kind}, context_dim {context_dim}) has a different "
            f"UNet layout (SDXL or another family). Load an SD1.5 checkpoint.") from None
    if context_dim not in (None, 768):
        raise MotionModuleError(f"'{name}' was trained for SD1.5 (text context 768); this MODEL ({kind}) uses "
                                f"context {context_dim}. Load an SD1.5 checkpoint.")


def _inject(model_patcher) -> None:
    motion = model_patcher.get_additional_models_with_key(KEY)[0].model
    unet = _unet(model_patcher)
    for part, index, module in motion.placements():
        block = _block(unet, part, index)
        block.insert(_insert_at(block), module)


def _eject(model_patcher) -> None:
    unet = _unet(model_patcher)
    for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks]:
        for i in reversed([i for i, layer in enumerate(block) if isinstance(layer, VanillaTemporalModule)]):
            block.pop(i)


def _run_temporal(layer, x, emb, context, transformer_options, *unused):
    # Checked 21 times per UNet pass: a 16-frame step can take minutes on CPU, and Cancel should not wait for it.
    comfy.model_management.throw_exception_if_processing_interrupted()
    conds = len(transformer_options.get("cond_or_uncond") or (0,))
    loras = transformer_options.get(LORA_KEY)
    frames = x.shape[0] // conds
    scale = transformer_options.get(SCALE_KEY)
    if scale is None:   # motion scale 1.0: the module's output untouched
        return layer(x, frames, loras.for_module(layer) if loras else None)
    window = transformer_options.get("context_window")   # core's context handler: this window's frames of the clip
    scales = window_scales(scale, frames, getattr(window, "index_list", None), getattr(window, "total_frames", None))
    if not any(scales):   # motion scale 0 everywhere: the module is skipped
        return x
    return blend(x, layer(x, frames, loras.for_module(layer) if loras else None), scales)


def sqrt_linear_sampling(model_patcher):
    """A model_sampling like the MODEL's own, but on the schedule AnimateDiff was trained with."""
    current = model_patcher.get_model_object("model_sampling")
    settings = {"beta_schedule": "sqrt_linear", "linear_start": current.linear_start,
                "linear_end": current.linear_end, "timesteps": current.num_timesteps,
                "zsnr": getattr(current, "zsnr", False)}
    return type(current)(SimpleNamespace(sampling_settings=settings))


def attach(model_patcher, handle: MotionHandle, motion_patcher=None, scale: MotionScale | None = None):
    """A clone of `model_patcher` that runs with the motion module; the input stays untouched. scale: the motion
    scale (None or 1.0 everywhere: the module as trained)."""
    check_unet(model_patcher, handle.patcher.model, handle.info.name)
    if model_patcher.get_additional_models_with_key(KEY):
        raise MotionModuleError("this MODEL already has a motion module applied; apply only one "
                                "(connect the checkpoint's MODEL, not the output of another Apply node)")
    model = model_patcher.clone()
    model.set_additional_models(KEY, [motion_patcher or handle.patcher.clone()])
    model.set_injections(KEY, [comfy.patcher_extension.PatcherInjection(inject=_inject, eject=_eject)])
    model.set_model_forward_timestep_embed_patch((VanillaTemporalModule, _run_temporal))
    model.add_object_patch("model_sampling", sqrt_linear_sampling(model_patcher))
    model.set_attachments(KEY, handle)
    if handle.loras:
        model.model_options["transformer_options"][LORA_KEY] = handle.lora_set()
    if scale is not None and not scale.is_identity:
        model.model_options["transformer_options"][SCALE_KEY] = scale
    return model


def scale_motion_loras(model_patcher, factor: float):
    """A clone whose motion LoRAs run at `factor` times their strengths; nothing is reloaded or copied."""
    loras = model_patcher.model_options["transformer_options"].get(LORA_KEY)
    if loras is None or factor == 1.0:
        return model_patcher
    model = model_patcher.clone()
    model.model_options["transformer_options"][LORA_KEY] = loras.rescaled(factor)
    return model


def attached_handle(model_patcher) -> MotionHandle | None:
    return model_patcher.get_attachment(KEY)
