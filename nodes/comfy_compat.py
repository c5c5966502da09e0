"""Every ComfyUI internal the pack relies on, one function (or constant) each, so a ComfyUI change breaks one place.

The pack otherwise uses only ComfyUI's public extension points (ModelPatcher clone, additional models, injections,
wrappers, object patches, attachments, callbacks; folder_paths.add_model_folder_path; latent_preview for previews).
What is here has no public form. Each entry says which ComfyUI versions it was checked on; "upstream" is the newest
Comfy-Org/ComfyUI source that could be read for that file (docs/comfyui_internals.md has the table).
tests/host/test_comfy_compat_host.py holds one canary per entry that fails with the entry's name when ComfyUI changes
it. This module imports only ComfyUI (no pack code), so the canaries can load it on its own.
"""
from __future__ import annotations

from types import SimpleNamespace

import comfy.ldm.modules.attention as _attention
import comfy.ldm.modules.diffusionmodules.openaimodel as _openaimodel
import comfy.model_management
import folder_paths
import latent_preview
import torch

# --- SD1.5 UNet layout (comfy/ldm/modules/diffusionmodules/openaimodel.py UNetModel) ----------------------------------
# Checked on 0.14.1 and 0.30.0 (openaimodel.py is not in the readable upstream snapshot; attention.py's
# SpatialTransformer is, unchanged). The motion module's layers go into the UNet's blocks, as in AnimateDiff's UNet3D;
# no extension point inserts a layer into a block, so the blocks (TimestepEmbedSequential, an nn.Sequential) are
# edited in place by the ModelPatcher injection that loads/unloads with the clone.
SpatialTransformer = _attention.SpatialTransformer
ResBlock = _openaimodel.ResBlock
UNET_BLOCKS = ("input_blocks", "middle_block", "output_blocks")


def unet_of(model_patcher):
    """The MODEL's UNet (BaseModel.diffusion_model), or None when it has no SD-style UNet blocks."""
    unet = getattr(model_patcher.model, "diffusion_model", None)
    if unet is None or not all(hasattr(unet, name) for name in UNET_BLOCKS):
        return None
    return unet


def unet_block(unet, part: str, index: int):
    """One block: ("input", i) -> input_blocks[i], ("middle", _) -> middle_block, ("output", i) -> output_blocks[i]."""
    if part == "input":
        return unet.input_blocks[index]
    if part == "middle":
        return unet.middle_block
    return unet.output_blocks[index]


def all_unet_blocks(unet) -> list:
    return [*unet.input_blocks, unet.middle_block, *unet.output_blocks]


def temporal_insert_index(block) -> int | None:
    """Where AnimateDiff's UNet3D has the motion module: after the block's last SpatialTransformer, else after its
    first ResBlock; None when the block has neither."""
    layers = list(block)
    attn = [i for i, layer in enumerate(layers) if isinstance(layer, SpatialTransformer)]
    if attn:
        return attn[-1] + 1
    res = [i for i, layer in enumerate(layers) if isinstance(layer, ResBlock)]
    return res[0] + 1 if res else None


def block_channels(block) -> int:
    """Output channels of the block's first ResBlock (StopIteration when it has none)."""
    return next(layer for layer in block if isinstance(layer, ResBlock)).out_channels


def context_dim(model_patcher):
    """Text-context width from the model config (768 for SD1.5), None when unknown."""
    config = getattr(model_patcher.model, "model_config", None)
    return getattr(config, "unet_config", {}).get("context_dim")


def frame_spanning_norms(unet) -> list[torch.nn.GroupNorm]:
    """The GroupNorms AnimateDiff v1's UNet3D applies to whole clips: each ResBlock's two (in_layers, out_layers; its
    ResnetBlock3D norm1/norm2) and the output head's (UNetModel.out[0]; UNet3D conv_norm_out). The SpatialTransformers'
    norms stay per frame, as in the original (its Transformer3DModel folds frames into the batch before its norm)."""
    norms = [m for res in unet.modules() if isinstance(res, ResBlock)
             for m in res.modules() if isinstance(m, torch.nn.GroupNorm)]
    norms += [m for m in unet.out.modules() if isinstance(m, torch.nn.GroupNorm)]
    return norms


def diffusion_model_call(executor, args: tuple) -> tuple:
    """(UNet, x, transformer_options) inside a WrappersMP.DIFFUSION_MODEL wrapper: UNetModel.forward executes its
    wrappers with (x, timesteps, context, y, control, transformer_options) and the UNet as executor.class_obj.
    Checked on 0.14.1 and 0.30.0."""
    return executor.class_obj, args[0], args[5]


# --- sampling ---------------------------------------------------------------------------------------------------------
def cond_count(transformer_options: dict) -> int:
    """How many conds (cond, uncond, ...) share the UNet batch: calc_cond_batch stores their kinds in
    transformer_options["cond_or_uncond"] before calling the model, so frames = batch // this.
    Checked on 0.14.1, 0.30.0 and upstream 0.38 (comfy/samplers.py)."""
    return len(transformer_options.get("cond_or_uncond") or (0,))


def discrete_sampling_like(current, **settings):
    """A model_sampling of the same class as `current` (ModelSamplingDiscrete + EPS/V_PREDICTION, built by
    model_base.model_sampling) on other schedule settings. Its constructor reads `model_config.sampling_settings`
    (and takes zsnr); there is no public factory that keeps the MODEL's prediction type.
    Checked on 0.14.1, 0.30.0 and upstream 0.38 (comfy/model_sampling.py)."""
    return type(current)(SimpleNamespace(sampling_settings=dict(settings)))


def schedule_settings(current) -> dict:
    """The discrete schedule a model_sampling was built with (attributes set by ModelSamplingDiscrete)."""
    return {"linear_start": current.linear_start, "linear_end": current.linear_end,
            "timesteps": current.num_timesteps, "zsnr": getattr(current, "zsnr", False)}


def sigma_table(model_patcher) -> torch.Tensor:
    """The MODEL's discrete sigma table (model_sampling.sigmas, one sigma per training timestep, as float32 on the CPU),
    from which Lightning's trailing timesteps are picked. ModelSamplingDiscrete keeps it as a buffer; there is no
    accessor. Checked on 0.14.1, 0.30.0 and upstream 0.38 (comfy/model_sampling.py)."""
    return model_patcher.get_model_object("model_sampling").sigmas.float().cpu()


# --- previews ---------------------------------------------------------------------------------------------------------
def previewer(model_patcher):
    """Core's latent previewer for this MODEL (None when previews are off). latent_preview.prepare_callback wraps it
    with a progress bar counted in steps; the pack counts in windows, so it needs the previewer itself.
    Checked on 0.14.1, 0.30.0 and upstream 0.38 (latent_preview.py)."""
    return latent_preview.get_previewer(model_patcher.load_device, model_patcher.model.latent_format)


def preview_image(previewer_, x0):
    """What ProgressBar.update_absolute takes as its preview: previewer.decode_latent_to_preview_image("JPEG", x0)."""
    return previewer_.decode_latent_to_preview_image("JPEG", x0) if previewer_ else None


# --- context windows (comfy/context_windows.py IndexListContextHandler) ----------------------------------------------
# Checked on 0.14.1 and 0.30.0 (context_windows.py is not in the readable upstream snapshot). The handler calls
#   context_schedule.func(num_frames, handler, model_options)                 -> list of index lists
#   fuse_method.func(length, sigma=, handler=, full_length=, idxs=, ...)      -> weights (0.30 adds context_overlap=)
#   RESIZE_COND_ITEM callbacks(cond_key, cond_value, window, x_in, device, new_cond_item)
#   COMBINE_CONTEXT_WINDOW_RESULTS callbacks(handler, x_in, sub_conds_out, sub_conds, window, window_idx,
#                                            total_windows, timestep, conds_final, counts_final, biases_final)
# The pack's functions take what they need and *unused for the rest; the canaries run them through core's handler.
def handler_step(handler) -> int:
    """The sampling step the handler is on: set_step stores it in the private `_step` (core's own schedules read it
    the same way); the step's window layout depends on it."""
    return handler._step


def sampling_step(transformer_options: dict) -> int:
    """The sampler step of this model call, 0-based: the sampler keeps the whole schedule in
    transformer_options["sample_sigmas"] and calc_cond_batch this call's sigma in transformer_options["sigmas"]; the
    step is where they match (how core's context handler finds it, IndexListContextHandler.set_step). 0 when either
    is missing (a model call outside a sampler). Checked on 0.14.1 and 0.30.0 (canary test_sampling_step)."""
    schedule, sigma = transformer_options.get("sample_sigmas"), transformer_options.get("sigmas")
    if schedule is None or sigma is None:
        return 0
    matches = torch.nonzero(torch.isclose(schedule.float().cpu(), sigma.reshape(-1)[0].float().cpu(), rtol=1e-4))
    return int(matches[0].item()) if matches.numel() else 0


def unet_memory_required(model_patcher, batch_shape) -> int:
    """Bytes ComfyUI expects one UNet call on a batch of `batch_shape` to need beyond the weights: BaseModel's
    memory_required, the figure its own samplers use to decide how many conds go into one batch (calc_cond_batch).
    Checked on 0.14.1 and 0.30.0 (canary test_unet_memory_required_and_free_memory)."""
    return int(model_patcher.model.memory_required(batch_shape))


def free_memory(model_patcher) -> int:
    """Bytes free on the device the UNet runs on (comfy.model_management.get_free_memory)."""
    return int(comfy.model_management.get_free_memory(model_patcher.load_device))


def context_window(transformer_options: dict):
    """The window core's context handler is evaluating (an IndexListContextWindow with index_list and total_frames),
    or None without windows: the handler stores it in transformer_options["context_window"] before each window's
    model call. Checked on 0.14.1 and 0.30.0."""
    return transformer_options.get("context_window")


def context_length(model_patcher) -> int | None:
    """The window length of context windows already on this MODEL (core's Context Windows node, or the pack's own),
    None without: core's handler sits in model_options["context_handler"] and keeps `context_length`.
    Checked on 0.14.1 and 0.30.0."""
    handler = model_patcher.model_options.get("context_handler")
    return None if handler is None else getattr(handler, "context_length", None)


def disable_causal_window_fix(handler) -> None:
    """Newer cores (0.30) prepend the frame before each window unless handler.causal_window_fix is False; it is a
    constructor argument there but not in 0.14.1, so it is set as an attribute (0.14.1 never reads it).
    Checked on 0.14.1 (absent, harmless) and 0.30.0."""
    handler.causal_window_fix = False


# --- ControlNet (comfy/controlnet.py ControlBase) ------------------------------------------------------------------
# Checked on 0.14.1 and 0.30.0. A ControlNet object keeps the hint it was given in `cond_hint_original` and its
# resized/preprocessed cache in `cond_hint` (get_control rebuilds it when None); chained ControlNets hang off
# `previous_controlnet`. There is no public way to give one context window its own hint frames.
def chained_controlnets(control) -> list:
    """`control` and every ControlNet chained behind it (previous_controlnet), each once, in chain order."""
    found, seen = [], set()
    while control is not None and id(control) not in seen:
        seen.add(id(control))
        found.append(control)
        control = getattr(control, "previous_controlnet", None)
    return found


def controlnet_hint(control):
    """The hint a ControlNet was given (None for control objects that take none, e.g. T2I adapters' own form)."""
    return getattr(control, "cond_hint_original", None)


def set_controlnet_hint(control, hint) -> None:
    """Give a ControlNet another hint and drop its cached, resized copy so the next call rebuilds it from `hint`."""
    control.cond_hint_original = hint
    control.cond_hint = None


# --- model folders ----------------------------------------------------------------------------------------------------
def add_model_extensions(folder_name: str, extensions: set[str]) -> None:
    """Let a model folder list these file types. folder_paths.add_model_folder_path (public) adds paths but creates
    a new folder with an empty extension set (= every file, README and all), and there is no public setter; the
    set is the second item of folder_paths.folder_names_and_paths[name]. Checked on 0.14.1, 0.30.0 and upstream 0.38."""
    paths, exts = folder_paths.folder_names_and_paths[folder_name]
    folder_paths.folder_names_and_paths[folder_name] = (paths, set(exts) | set(extensions))


# --- upscaling --------------------------------------------------------------------------------------------------------
# Core's per-pixel working-memory factor for upscale models (comfy_extras/nodes_upscale_model.py, Upscale Image
# (using Model): `(512 * 512 * 3) * element_size * scale * 384.0`, "an estimate"). There is no public estimate to call.
# Checked on 0.14.1, 0.30.0 and upstream 0.38.
UPSCALE_MEMORY_FACTOR = 384


def core_upscale_model_loader():
    """Core's Load Upscale Model node, whose execute() the pack's loader calls as a function: the pack reads upscale
    files exactly as core does (its key fixes, such as the `module.` prefix of some SwinIR files; spandrel_extra_arches
    when installed; from 0.30 the ModelPatcher it attaches for core's memory management) instead of keeping a copy
    that drifts. Checked on 0.14.1 and 0.30.0 (comfy_extras/nodes_upscale_model.py, `UpscaleModelLoader.execute(
    model_name)` -> NodeOutput holding the spandrel descriptor)."""
    try:
        from comfy_extras.nodes_upscale_model import UpscaleModelLoader
    except ImportError as error:
        raise RuntimeError("this ComfyUI has no UpscaleModelLoader in comfy_extras.nodes_upscale_model, which Load "
                           "Upscale Model (video) calls; use core's Load Upscale Model until the pack is updated"
                           ) from error
    return UpscaleModelLoader


def upscale_model_patcher(model):
    """The ModelPatcher core's upscale loader attaches to the spandrel descriptor (`model.patcher`, from 0.30: core's
    memory management then loads and offloads it), or None (0.14.1 attaches none). Checked on 0.14.1 and 0.30.0."""
    return getattr(model, "patcher", None)


def is_oom(error: BaseException) -> bool:
    """Out of memory, as core's own nodes judge it: ComfyUI 0.30 has model_management.is_oom(), which also
    recognises an accelerator error with the out-of-memory code (torch.AcceleratorError, raised by newer torch for
    some CUDA OOMs) and clears that error's state; 0.14.1 has only OOM_EXCEPTION, so the same test is made here.
    Never an interrupt: OOM_EXCEPTION is plain Exception on some builds, and Cancel must stop the run.
    Checked on 0.14.1 and 0.30.0."""
    import comfy.model_management as mm
    if isinstance(error, mm.InterruptProcessingException):
        return False
    core_is_oom = getattr(mm, "is_oom", None)     # ComfyUI >= 0.30 (absent in 0.14.1)
    if core_is_oom is not None:
        return core_is_oom(error)
    if isinstance(error, mm.OOM_EXCEPTION):
        return True
    accelerator_error = getattr(torch, "AcceleratorError", None)     # newer torch only
    return accelerator_error is not None and isinstance(error, accelerator_error) and (
        getattr(error, "error_code", None) == 2 or "out of memory" in str(error).lower())
