"""ComfyUI side of the motion module: wrap it in a ModelPatcher and attach it to an SD1.5 MODEL clone.

Everything goes through ModelPatcher extension points, so nothing global changes and the input MODEL stays as it was:
  * additional model: ComfyUI's memory manager loads/offloads the motion module together with the UNet;
  * injections: the temporal modules are inserted into the UNet's blocks when this clone is loaded and removed when it
    is unloaded or another clone of the same UNet is loaded;
  * forward_timestep_embed_patch: ComfyUI hands our inserted layers to us with transformer_options, from which the
    frame count is read (latents per cond / number of conds), so cfg 1 (cond only) and cfg > 1 both work; the motion
    scale (motion/scale.py) is applied there too, to each module's residual, per frame of core's context window;
  * object patch: model_sampling switched to sqrt_linear, the schedule AnimateDiff was trained on;
  * diffusion-model wrapper (v1 family only): the UNet's ResBlock and output GroupNorms normalise over the whole clip
    during each UNet call, as in AnimateDiff v1's UNet3D (motion/frame_norm.py);
  * Motion LoRA: not a weight patch; its low-rank deltas ride along in transformer_options (LORA_KEY) and each
    temporal layer adds them in its forward, so the module's weights are shared by every strength.
The UNet internals these need (block layout, layer classes, call conventions) are in comfy_compat.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.ops
import comfy.patcher_extension

from ..motion.formats import MotionInfo
from ..motion.frame_norm import clip_wide
from ..motion.lora import LoRASet
from ..motion.loader import load_motion_module
from ..motion.module import MotionModel, MotionModuleError, VanillaTemporalModule
from ..motion.scale import MotionScale, blend, window_scales
from . import comfy_compat as cc

KEY = "adlightning_motion"   # additional-models / injections / attachments key
LORA_KEY = "adlightning_motion_lora"   # transformer_options entry: the motion.lora.LoRASet of this MODEL
SCALE_KEY = "adlightning_motion_scale"   # transformer_options entry: the motion.scale.MotionScale of this MODEL
# transformer_options entry: context windows inside the motion module (nodes/context_handler.ModuleWindows): an object
# whose frame_windows(frames, transformer_options) gives this call's motion.windows.FrameWindows, or None.
WINDOWS_KEY = "adlightning_module_windows"


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
    # mode stream the module's weights the same way it does for the UNet's. (Motion LoRA is not a weight patch:
    # it rides in transformer_options, see LORA_KEY.)
    manual_cast = comfy.model_management.unet_manual_cast(dtype, load_device) is not None
    ops = comfy.ops.manual_cast if manual_cast else comfy.ops.disable_weight_init
    model, info = load_motion_module(path, dtype=dtype, ops=ops)
    # Manual cast: weights stay in `dtype`, every layer computes in the UNet's compute dtype, which is what the
    # activations arrive in; the module must not cast them down to the storage dtype.
    model.set_weight_casting(manual_cast)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                               offload_device=comfy.model_management.unet_offload_device())
    return MotionHandle(patcher=patcher, info=info)


def _insert_at(block) -> int:
    index = cc.temporal_insert_index(block)
    if index is None:
        raise MotionModuleError("UNet block has neither attention nor ResBlock; this is not an SD1.5 UNet")
    return index


def check_unet(model_patcher, motion: MotionModel, name: str) -> None:
    """Refuse MODELs whose blocks do not match the motion module's widths (SDXL, SD3, Flux, ...)."""
    unet = cc.unet_of(model_patcher)
    kind = type(model_patcher.model).__name__
    if unet is None:
        raise MotionModuleError(f"'{name}' needs an SD1.5 MODEL (UNet); got {kind}, which has no UNet blocks")
    context_dim = cc.context_dim(model_patcher)
    try:
        for part, index, module in motion.placements():
            if cc.block_channels(cc.unet_block(unet, part, index)) != module.temporal_transformer.proj_in.in_features:
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
    unet = cc.unet_of(model_patcher)
    for part, index, module in motion.placements():
        block = cc.unet_block(unet, part, index)
        block.insert(_insert_at(block), module)


def _eject(model_patcher) -> None:
    for block in cc.all_unet_blocks(cc.unet_of(model_patcher)):
        for i in reversed([i for i, layer in enumerate(block) if isinstance(layer, VanillaTemporalModule)]):
            block.pop(i)


def _run_temporal(layer, x, emb, context, transformer_options, *unused):
    # Checked 21 times per UNet pass: a 16-frame step can take minutes on CPU, and Cancel should not wait for it.
    # Not inside a torch.compile'd UNet (core's TorchCompileModel): the check takes a lock, which would split the
    # compiled graph at every motion module; there Cancel is seen between steps.
    if not torch.compiler.is_compiling():
        comfy.model_management.throw_exception_if_processing_interrupted()
    loras = transformer_options.get(LORA_KEY)
    frames = x.shape[0] // cc.cond_count(transformer_options)
    plan = transformer_options.get(WINDOWS_KEY)
    windows = plan.frame_windows(frames, transformer_options) if plan is not None else None
    scale = transformer_options.get(SCALE_KEY)
    if scale is None:   # motion scale 1.0: the module's output untouched
        return layer(x, frames, loras.for_module(layer) if loras else None, windows)
    window = cc.context_window(transformer_options)   # core's context handler: this window's frames of the clip
    scales = window_scales(scale, frames, getattr(window, "index_list", None), getattr(window, "total_frames", None))
    if not any(scales):   # motion scale 0 everywhere: the module is skipped
        return x
    return blend(x, layer(x, frames, loras.for_module(layer) if loras else None, windows), scales)


def spans_frames(info: MotionInfo) -> bool:
    """AnimateDiff v1 and AnimateLCM (v1 layout) were trained on a UNet3D whose ResBlock GroupNorms see the whole
    clip (use_inflated_groupnorm false in the original's v1 config); v2, v3 and Lightning normalise per frame."""
    return info.version == "v1"


def _clip_wide_groupnorm(executor, *args, **kwargs):
    """DIFFUSION_MODEL wrapper for the v1 family: during this UNet call its ResBlock and output GroupNorms take their
    statistics over each cond's frames together (the frames of this call: one context window when windows are on)."""
    unet, x, transformer_options = cc.diffusion_model_call(executor, args)
    frames = x.shape[0] // cc.cond_count(transformer_options)
    if frames < 2 or x.shape[0] % frames:
        return executor(*args, **kwargs)
    with clip_wide(cc.frame_spanning_norms(unet), frames):
        return executor(*args, **kwargs)


def sqrt_linear_sampling(model_patcher):
    """A model_sampling like the MODEL's own, but on the schedule AnimateDiff was trained with."""
    current = model_patcher.get_model_object("model_sampling")
    return cc.discrete_sampling_like(current, **cc.schedule_settings(current), beta_schedule="sqrt_linear")


def attach(model_patcher, handle: MotionHandle, scale: MotionScale | None = None):
    """A clone of `model_patcher` that runs with the motion module; the input stays untouched. scale: the motion
    scale (None or 1.0 everywhere: the module as trained)."""
    check_unet(model_patcher, handle.patcher.model, handle.info.name)
    if model_patcher.get_additional_models_with_key(KEY):
        raise MotionModuleError("this MODEL already has a motion module applied; apply only one "
                                "(connect the checkpoint's MODEL, not the output of another Apply node)")
    model = model_patcher.clone()
    model.set_additional_models(KEY, [handle.patcher.clone()])
    model.set_injections(KEY, [comfy.patcher_extension.PatcherInjection(inject=_inject, eject=_eject)])
    model.set_model_forward_timestep_embed_patch((VanillaTemporalModule, _run_temporal))
    model.add_object_patch("model_sampling", sqrt_linear_sampling(model_patcher))
    if spans_frames(handle.info):
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, KEY, _clip_wide_groupnorm)
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
