"""Attach Motion LoRAs (camera moves such as v2_lora_ZoomIn) to a loaded motion module."""
import logging

import folder_paths
from comfy_api.latest import io

from ..motion.loader import read_state_dict
from ..motion.lora import match, parse
from .model_folders import MOTION_LORAS
from .types import CATEGORY, MotionModuleWire

log = logging.getLogger("AnimateDiff-Lightning")


class LoadMotionLoRA(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_LoadMotionLoRA",
            display_name="AnimateDiff-Lightning Motion LoRA",
            category=CATEGORY,
            description="Adds a Motion LoRA (camera moves: zoom, pan, tilt, roll...) to a motion module. Chain several "
                        "to stack them. Applied as a low-rank path at run time: nothing is merged or copied.",
            inputs=[
                MotionModuleWire.Input("motion_model", tooltip="From Load AnimateDiff-Lightning Motion Module or "
                                                               "another Motion LoRA node."),
                io.Combo.Input("lora_name", options=folder_paths.get_filename_list(MOTION_LORAS),
                               tooltip="Motion LoRA file in models/animatediff_motion_lora, e.g. v2_lora_ZoomIn.ckpt."),
                io.Float.Input("strength", default=0.75, min=-2.0, max=2.0, step=0.05,
                               tooltip="How strongly this LoRA's motion applies. The Lightning model card suggests "
                                       "0.7-0.8; 0 turns it off exactly."),
            ],
            outputs=[MotionModuleWire.Output(display_name="MOTION_MODEL")],
        )

    @classmethod
    def execute(cls, motion_model, lora_name, strength) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise(MOTION_LORAS, lora_name)
        lora = parse(read_state_dict(path), lora_name)
        found = match(lora, motion_model.patcher.model)
        text = found.report(lora_name) + f", rank {lora.rank}, strength {strength}"
        if found.skipped_mid:
            log.warning(text)
        else:
            log.info(text)
        return io.NodeOutput(motion_model.with_lora(lora, strength), ui={"text": [text]})
