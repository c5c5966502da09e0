"""Load a motion module and apply it to an SD1.5 MODEL."""
import logging

import folder_paths
from comfy_api.latest import io

from ..motion.scale import MotionScale, MotionScaleError
from . import motion_patch
from .model_folders import MOTION_MODELS, not_in_folder
from .types import CATEGORY, MotionModuleWire

log = logging.getLogger("AnimateDiff-Lightning")

MOTION_SCALE_TOOLTIP = ("How strongly the motion module moves things: it scales what the temporal attention adds to "
                        "each frame. 1.0 = the module as trained (unchanged output); 0 = no motion module (every "
                        "frame is made on its own, like a still image); 0.5 calmer motion; above 1 exaggerated, "
                        "often at the cost of detail.")
MOTION_SCALE_FRAMES_TOOLTIP = ("Optional per-frame-range scales, one range per line: 'first-last: scale' with frame "
                               "numbers from 0 or percentages of the clip, e.g. '0-15: 1.0' and '50%-100%: 0.3'. "
                               "Frames in no range get motion_scale; where ranges overlap the later line wins.")


class LoadMotionModule(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_LoadMotionModule",
            display_name="Load AnimateDiff-Lightning Motion Module",
            category=CATEGORY,
            description="Loads a motion module from models/animatediff_models: AnimateDiff-Lightning 1/2/4/8-step "
                        "(comfyui or diffusers release), AnimateDiff v1/v2/v3 or AnimateLCM-T2V.",
            inputs=[
                io.Combo.Input("model_name", options=folder_paths.get_filename_list(MOTION_MODELS),
                               tooltip="Motion module file in models/animatediff_models, e.g. "
                                       "animatediff_lightning_4step_comfyui.safetensors. Its step count (4) "
                                       "becomes the sampler's default steps."),
            ],
            outputs=[MotionModuleWire.Output(display_name="MOTION_MODEL")],
        )

    @classmethod
    def validate_inputs(cls, model_name):
        # Core's own check would say only that the name is not in the list; this one also finds a motion module left
        # in checkpoints/ (or another model folder) and says where it belongs. Naming model_name here replaces core's
        # list check for it, so the list is checked here.
        if not isinstance(model_name, str) or model_name in folder_paths.get_filename_list(MOTION_MODELS):
            return True
        return not_in_folder(model_name, MOTION_MODELS, "motion modules (AnimateDiff-Lightning, AnimateDiff v1-v3)")

    @classmethod
    def execute(cls, model_name) -> io.NodeOutput:
        handle = motion_patch.load_handle(folder_paths.get_full_path_or_raise(MOTION_MODELS, model_name))
        text = handle.info.report()
        if motion_patch.spans_frames(handle.info):
            text += "; v1 family: the UNet's ResBlock GroupNorms will normalise over the whole clip, as in the original"
        log.info("loaded %s", text)
        return io.NodeOutput(handle, ui={"text": [text]})


class ApplyMotionModule(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_ApplyMotionModule",
            display_name="Apply AnimateDiff-Lightning",
            category=CATEGORY,
            description="Returns a copy of the SD1.5 MODEL that animates: the motion module runs inside the UNet and "
                        "the noise schedule is switched to the one AnimateDiff was trained on (sqrt_linear). "
                        "The input MODEL is left unchanged.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 checkpoint's MODEL (after any image LoRAs)."),
                MotionModuleWire.Input("motion_model", tooltip="From Load AnimateDiff-Lightning Motion Module "
                                                               "(optionally through Motion LoRA nodes)."),
                io.Float.Input("motion_scale", default=1.0, min=0.0, max=2.0, step=0.05, optional=True,
                               tooltip=MOTION_SCALE_TOOLTIP),
                io.String.Input("motion_scale_frames", default="", multiline=True, optional=True,
                                tooltip=MOTION_SCALE_FRAMES_TOOLTIP),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def validate_inputs(cls, motion_scale_frames=""):
        # Checked when the prompt is queued, so a bad line is reported before any model loads. ComfyUI skips its own
        # range and type checks for every input this signature names (all of them, with **kwargs), so it names only
        # the text it parses; the lines' validity does not depend on the default scale, which core range-checks.
        if isinstance(motion_scale_frames, str):
            try:
                MotionScale.parse(1.0, motion_scale_frames)
            except MotionScaleError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, model, motion_model, motion_scale=1.0, motion_scale_frames="") -> io.NodeOutput:
        scale = MotionScale.parse(motion_scale, motion_scale_frames or "")
        return io.NodeOutput(motion_patch.attach(model, motion_model, scale=scale))
