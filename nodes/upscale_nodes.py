"""Upscale a clip's frames with a Real-ESRGAN-family model on core's UPSCALE_MODEL type; the math is in upscaling/."""
import logging
import os
from contextlib import contextmanager

import comfy.model_management as mm
import comfy.utils
import folder_paths
from comfy_api.latest import io
from spandrel import UnsupportedModelError

from ..upscaling.budget import clip_bytes, plan, tile_bytes
from ..upscaling.resize import scaled_size
from ..upscaling.upscale_models import (EXAMPLES, UpscaleModelError, check_image_frames, check_upscale_model,
                                       compute_dtype, model_summary, unreadable_file, upscale_frames)
from . import comfy_compat as cc
from .types import CATEGORY

log = logging.getLogger("AnimateDiff-Lightning")

UPSCALE_MODELS = "upscale_models"      # core's folder, shared with Load Upscale Model
MAX_FRAMES_PER_BATCH = 8
MODEL_TOOLTIP = (f"From Load Upscale Model (core's or this pack's), a file in models/upscale_models: {EXAMPLES}, "
                 "RealESRGAN_x4plus_anime_6B.pth or realesr-general-x4v3.pth.")


class LoadUpscaleModel(io.ComfyNode):
    """Core's loader plus what core does not say: which file is unusable and why, before any frame is upscaled,
    and the model family (shown on the node). Kept for those messages; Upscale Frames checks models from core's
    loader the same way."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_LoadUpscaleModel",
            display_name="Load Upscale Model (video)",
            category=CATEGORY,
            description="Loads a Real-ESRGAN-family model from models/upscale_models as a core UPSCALE_MODEL, and "
                        "refuses files that cannot upscale RGB frames right away, naming the file.",
            inputs=[
                io.Combo.Input("model_name", options=folder_paths.get_filename_list(UPSCALE_MODELS),
                               tooltip=f"File in models/upscale_models, under its released name, e.g. {EXAMPLES}."),
            ],
            outputs=[io.UpscaleModel.Output()],
        )

    @classmethod
    def execute(cls, model_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise(UPSCALE_MODELS, model_name)
        size = os.path.getsize(path)
        if size == 0:
            raise unreadable_file(model_name, EOFError(), size)
        loader = cc.core_upscale_model_loader()
        try:
            model = loader.execute(model_name)[0]
        except UnsupportedModelError as error:
            raise UpscaleModelError(f"'{model_name}' is not a model architecture spandrel knows; use a Real-ESRGAN "
                                    f"file such as {EXAMPLES}.") from error
        except mm.InterruptProcessingException:
            raise
        except Exception as error:
            # from None: the cause's text (torch's advice to load unsafely, for a refused pickle) must not follow
            # the pack's advice into the log; unreadable_file keeps what matters of it.
            raise unreadable_file(model_name, error, size) from None
        model = check_upscale_model(model, f"'{model_name}'")
        text = model_summary(model)
        log.info("loaded %s: %s", model_name, text)
        return io.NodeOutput(model, ui={"text": [text]})


def on_oom(tile: int, batch: int) -> None:
    log.warning("upscale ran out of memory; retrying with %d px tiles, %d frame(s) per batch", tile, batch)
    mm.soft_empty_cache()


@contextmanager
def model_on(model, device, memory_required: int):
    """The model's weights on `device` for the upscale. From ComfyUI 0.30 core's loader (which the pack's calls)
    attaches a ModelPatcher, and core's memory management loads the model (and offloads it when something else needs
    the room), as core's own upscale node does there; on 0.14.1 there is none, so the pack frees the room and moves
    the weights itself, back to the offload device afterwards, as core's 0.14.1 upscale node does."""
    patcher = cc.upscale_model_patcher(model)
    if patcher is not None:
        mm.load_models_gpu([patcher], memory_required=memory_required)
        yield
        return
    mm.free_memory(mm.module_size(model.model) + memory_required, device)
    model.to(device)
    try:
        yield
    finally:
        model.to(mm.unet_offload_device())


class UpscaleFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_UpscaleFrames",
            display_name="Upscale Frames (video)",
            category=CATEGORY,
            description="Upscales every frame of a clip with an upscale model (Real-ESRGAN RRDBNet or "
                        "SRVGGNetCompact), tiled with overlap, then optionally stabilises the added detail over time "
                        "so it does not shimmer.",
            inputs=[
                io.Image.Input("images", tooltip="The clip's frames, e.g. VAE Decode of the Lightning sampler's "
                                                 "output. All frames are upscaled; stabilisation follows their order."),
                io.UpscaleModel.Input("upscale_model", tooltip=MODEL_TOOLTIP),
                io.Float.Input("scale", default=2.0, min=0.0, max=8.0, step=0.25,
                               tooltip="Output size / input size. 0 = the model's own factor (4 for x4plus, 2 for "
                                       "x2plus). Other values resize the model's output: 2.0 from a 4x model is an "
                                       "antialiased reduction of its 4x result."),
                io.Boolean.Input("temporal_stabilize", default=True,
                                 tooltip="Smooth the detail the model adds over time where the input frames are "
                                         "still, so textures do not shimmer from frame to frame. Moving areas keep "
                                         "each frame's own detail. Off = plain per-frame upscaling."),
                io.Int.Input("tile", default=512, min=64, max=4096, step=8, advanced=True,
                             tooltip="Tile side in input pixels. Frames up to this size are upscaled whole. Halved "
                                     "automatically on out-of-memory, down to 64."),
                io.Int.Input("overlap", default=32, min=0, max=256, step=4, advanced=True,
                             tooltip="Input pixels neighbouring tiles share (at most half the tile); the seams "
                                     "are cross-faded over the middle half of it. Larger hides seams of deep "
                                     "models better, at more cost."),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, images, upscale_model, scale, temporal_stabilize, tile, overlap) -> io.NodeOutput:
        check_image_frames(images)
        model = check_upscale_model(upscale_model)
        device = mm.get_torch_device()
        count, height, width = images.shape[:3]
        per_frame = tile_bytes(tile, height, width, model.scale, cc.UPSCALE_MEMORY_FACTOR)
        target = scaled_size(height, width, scale if scale > 0 else model.scale)
        clip = clip_bytes(count, height, width, target, temporal_stabilize)
        dtype = None
        if device.type == "cuda":    # autocast in half precision is what CUDA does well; elsewhere the model's own
            dtype = compute_dtype(model, mm.should_use_fp16(device), mm.should_use_bf16(device))
        pbar = comfy.utils.ProgressBar(count)
        with model_on(model, device, per_frame + clip):
            if device.type == "cpu":
                batch, keep = 1, True        # batching does not speed convolutions up on a CPU
            else:
                batch, keep = plan(count, mm.get_free_memory(device), per_frame, clip, MAX_FRAMES_PER_BATCH)
            if not keep:
                log.info("upscaling %d frames: the whole clip does not fit on %s; finished frames wait on the host",
                         count, device)
            out = upscale_frames(images, model, scale, tile, overlap, temporal_stabilize, device=device,
                                 frame_batch=batch, is_oom=cc.is_oom, on_oom=on_oom, dtype=dtype,
                                 store=device if keep else mm.intermediate_device(),
                                 on_progress=lambda done, total: pbar.update_absolute(done, total),
                                 check=mm.throw_exception_if_processing_interrupted)
        return io.NodeOutput(out.to(mm.intermediate_device()))
