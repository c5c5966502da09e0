"""Upscale a clip's frames with a Real-ESRGAN-family model on core's UPSCALE_MODEL type; the math is in upscaling/."""
import logging

import comfy.model_management as mm
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io
from spandrel import ModelLoader, UnsupportedModelError

from ..upscaling.upscale_models import (EXAMPLES, UpscaleModelError, check_image_frames, check_upscale_model,
                                       model_summary, upscale_frames)
from .types import CATEGORY

log = logging.getLogger("AnimateDiff-Lightning")

UPSCALE_MODELS = "upscale_models"      # core's folder, shared with Load Upscale Model
MAX_FRAMES_PER_BATCH = 8
MODEL_TOOLTIP = (f"From Load Upscale Model (core's or this pack's), a file in models/upscale_models: {EXAMPLES}, "
                 "RealESRGAN_x4plus_anime_6B.pth or realesr-general-x4v3.pth.")


class LoadUpscaleModel(io.ComfyNode):
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
        try:
            model = ModelLoader().load_from_state_dict(comfy.utils.load_torch_file(path, safe_load=True)).eval()
        except UnsupportedModelError as error:
            raise UpscaleModelError(f"'{model_name}' is not a model architecture spandrel knows; use a Real-ESRGAN "
                                    f"file such as {EXAMPLES}.") from error
        model = check_upscale_model(model, f"'{model_name}'")
        text = model_summary(model)
        log.info("loaded %s: %s", model_name, text)
        return io.NodeOutput(model, ui={"text": [text]})


def frame_bytes(tile: int, height: int, width: int, scale: int) -> int:
    """Working memory for one frame's tile: core's estimate for upscale models (Upscale Image (using Model))."""
    side = min(tile, max(height, width))
    return side * side * 3 * 4 * max(scale, 1) * 384


def frames_per_batch(device: torch.device, frames: int, per_frame: int) -> int:
    """One frame per call on CPU (batching does not speed convolutions up there); on a GPU as many as fit."""
    if device.type == "cpu":
        return 1
    return max(1, min(frames, MAX_FRAMES_PER_BATCH, int(mm.get_free_memory(device) * 0.8 // per_frame)))


def is_oom(error: BaseException) -> bool:
    # OOM_EXCEPTION is plain Exception on some builds: an interrupt must still stop the run.
    return isinstance(error, mm.OOM_EXCEPTION) and not isinstance(error, mm.InterruptProcessingException)


def on_oom(tile: int, batch: int) -> None:
    log.warning("upscale ran out of memory; retrying with %d px tiles, %d frame(s) per batch", tile, batch)
    mm.soft_empty_cache()


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
        per_frame = frame_bytes(tile, images.shape[1], images.shape[2], model.scale)
        mm.free_memory(mm.module_size(model.model) + per_frame, device)
        batch = frames_per_batch(device, images.shape[0], per_frame)
        pbar = comfy.utils.ProgressBar(images.shape[0])
        model.to(device)
        try:
            out = upscale_frames(images, model, scale, tile, overlap, temporal_stabilize, device=device,
                                 frame_batch=batch, is_oom=is_oom, on_oom=on_oom,
                                 on_progress=lambda done, total: pbar.update_absolute(done, total),
                                 check=mm.throw_exception_if_processing_interrupted)
        finally:
            model.to(mm.unet_offload_device())
        return io.NodeOutput(out.to(mm.intermediate_device()))
