"""Upscaling a clip with a spandrel image model: model checks, tiling, final resize, stabilisation (no ComfyUI).

spandrel is the loader ComfyUI core itself uses for UPSCALE_MODEL, so any file core's Load Upscale Model reads works
here. RRDBNet (Real-ESRGAN x4plus / x2plus / x4plus_anime_6B, ESRGAN) and SRVGGNetCompact (realesr-animevideov3,
realesr-general-x4v3) are the tested families; other RGB super-resolution models run too and are logged as untested.
"""
from __future__ import annotations

import logging
import pickle
import re
from typing import Callable

import torch
from spandrel import ImageModelDescriptor, ModelTiling

from .resize import resize_frames, scaled_size
from .temporal_stabilize import stabilize
from .tiles import DEFAULT_MIN_TILE, TiledUpscaler, is_torch_oom

log = logging.getLogger("AnimateDiff-Lightning")

TESTED_FAMILIES = {"ESRGAN": "RRDBNet", "Compact": "SRVGGNetCompact"}
EXAMPLES = "RealESRGAN_x2plus.pth, RealESRGAN_x4plus.pth or realesr-animevideov3.pth"


class UpscaleModelError(ValueError):
    """The model or the frames cannot be upscaled; the message says what to use instead."""

    __module__ = "builtins"   # shown as UpscaleModelError, not as the pack's folder path (see motion/module.py)


def check_upscale_model(model, source: str = "the upscale model") -> ImageModelDescriptor:
    """The model as a spandrel ImageModelDescriptor that turns RGB frames into RGB frames, or a clear error."""
    if not isinstance(model, ImageModelDescriptor):
        kind = (f"a {model.architecture.name} {model.purpose.lower()} model" if hasattr(model, "architecture")
                else f"a {type(model).__name__}")
        raise UpscaleModelError(
            f"{source} is {kind}, not a single-image upscale model. Connect an UPSCALE_MODEL loaded from "
            f"models/upscale_models, e.g. {EXAMPLES}.")
    name = model.architecture.name
    if model.purpose == "FaceSR":
        raise UpscaleModelError(
            f"{source} is {name}, a face restoration model: it expects aligned face crops, not whole frames. "
            f"Use a super-resolution model such as {EXAMPLES}.")
    if model.input_channels != 3 or model.output_channels != 3:
        raise UpscaleModelError(
            f"{source} is a {name} model for {model.input_channels}-channel input and {model.output_channels}-"
            f"channel output; video frames are RGB (3 -> 3). Use an RGB model such as {EXAMPLES}.")
    return model


def unreadable_file(name: str, error: BaseException, size: int) -> UpscaleModelError:
    """The error for a file in models/upscale_models that could not be read as weights, naming it and saying what to
    do first. torch's own text for a refused pickle suggests loading with weights_only=False (which runs whatever
    code the file holds): it is left out; only the name of the refused object is kept."""
    if size == 0:
        return UpscaleModelError(f"'{name}' is empty (0 bytes): its download or copy did not finish. Download it "
                                 f"again, e.g. {EXAMPLES}.")
    if isinstance(error, pickle.UnpicklingError):
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f" ({refused.group(1)})" if refused else ""
        return UpscaleModelError(
            f"'{name}' holds Python objects besides weights{what}, which ComfyUI does not unpickle (it loads "
            f"weights only, so a file cannot run code). Use the official release of the model, e.g. {EXAMPLES}, or "
            f"its .safetensors copy from Comfy-Org/Real-ESRGAN_repackaged.")
    detail = "the file ends early" if isinstance(error, EOFError) else str(error) or type(error).__name__
    return UpscaleModelError(f"'{name}' ({size} bytes) could not be read as a model file: {detail}. It may be "
                             f"truncated or not a .pth/.safetensors model; download it again, e.g. {EXAMPLES}.")


def family(model: ImageModelDescriptor) -> str:
    return TESTED_FAMILIES.get(model.architecture.id, model.architecture.name)


def model_summary(model: ImageModelDescriptor) -> str:
    tested = "" if model.architecture.id in TESTED_FAMILIES else " (untested family)"
    return f"{family(model)}{tested}, {model.scale}x, {' '.join(model.tags)}"


def check_image_frames(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise UpscaleModelError(
            f"expected IMAGE frames shaped (frames, height, width, 3), got {tuple(images.shape)}. Connect decoded "
            f"RGB frames (VAE Decode output); remove an alpha channel first.")


def upscale_frames(images: torch.Tensor, model: ImageModelDescriptor, scale: float = 0.0, tile: int = 512,
                   overlap: int = 32, temporal_stabilize: bool = True, device: torch.device | None = None,
                   frame_batch: int = 1, min_tile: int = DEFAULT_MIN_TILE,
                   is_oom: Callable[[BaseException], bool] = is_torch_oom,
                   on_progress: Callable[[int, int], None] | None = None, check: Callable[[], None] | None = None,
                   on_oom: Callable[[int, int], None] | None = None, dtype: torch.dtype | None = None,
                   store: torch.device | None = None) -> torch.Tensor:
    """IMAGE frames (N, H, W, 3) in [0, 1] -> (N, round(H*s), round(W*s), 3) float32 on the frames' device,
    s = `scale` (0 = the model's own factor; others resize its output with antialiased bicubic).

    Everything runs on `device` (default: the frames' device), where the model must already be: tiles, seam blending,
    the final resize and the stabilisation, so the result crosses back once, at the end. `dtype` (e.g. float16 on
    CUDA, for a model that supports it) runs the model under autocast, leaving its weights as they are (the
    UPSCALE_MODEL is shared with other nodes); blending, resizing and stabilising stay in float32. `store` is where the
    finished frames wait for stabilisation (default: `device`); pass the host when the whole upscaled clip would not
    fit on the device: the frames then go through the device in batches and one at a time."""
    check_image_frames(images)
    model = check_upscale_model(model)
    work = torch.device(device) if device is not None else images.device
    store = torch.device(store) if store is not None else work
    # Where the clip is kept, the input goes there at once (one transfer); otherwise it goes batch by batch.
    frames = images.to(store).movedim(-1, 1).float()
    height, width = frames.shape[-2:]
    align = model.size_requirements.multiple_of
    whole = -(-max(height, width) // align) * align     # a tile this size is the whole frame, on the model's grid
    if model.tiling == ModelTiling.INTERNAL:
        tile = min_tile = whole          # the model tiles itself; cutting its input would change its result
    elif model.tiling == ModelTiling.DISCOURAGED:
        tile = max(tile, whole)          # whole frames while memory allows
    if model.architecture.id not in TESTED_FAMILIES:
        log.warning("upscaling with %s: not a tested family (tested: %s)", model.architecture.name,
                    ", ".join(TESTED_FAMILIES.values()))

    target = scaled_size(height, width, scale if scale > 0 else model.scale)

    def run(piece):
        if dtype is None or dtype == model.dtype:
            return model(piece.to(model.dtype))
        with torch.autocast(piece.device.type, dtype=dtype):
            return model(piece.to(model.dtype))

    def finish(batch):
        return resize_frames(batch, target).clamp(0, 1)

    upscaler = TiledUpscaler(run, model.scale, tile, overlap, align=align,
                             frame_batch=frame_batch, min_tile=min_tile, device=work, is_oom=is_oom,
                             on_progress=on_progress, check=check, on_oom=on_oom, post=finish, store=store)
    with torch.no_grad():
        upscaled = upscaler(frames)
        if temporal_stabilize:
            upscaled = stabilize(frames, upscaled, device=work)
    return upscaled.movedim(1, -1).contiguous().to(images.device)


def compute_dtype(model: ImageModelDescriptor, half: bool, bfloat16: bool) -> torch.dtype | None:
    """The dtype to run `model` in, given what the device does well (the caller asks ComfyUI): float16 where the
    model supports it, else bfloat16, else None (its own dtype, float32 for the released files)."""
    if half and model.supports_half:
        return torch.float16
    if bfloat16 and model.supports_bfloat16:
        return torch.bfloat16
    return None
