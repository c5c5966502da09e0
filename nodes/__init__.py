"""ComfyUI glue: node classes and the extension entry point; the math lives in motion/ and samplers/."""
from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .app_route import register as _register_app_page
from .context_nodes import ContextOptionsNode
from .decode_nodes import DecodeFrames
from .metrics_nodes import ClipMetrics
from .memory_route import register as _register_memory_route
from .model_folders import register as _register_model_folders
from .lora_nodes import LoadMotionLoRA
from .motion_nodes import ApplyMotionModule, LoadMotionModule
from .prompt_nodes import PromptTravel
from .sampler_nodes import LightningSampler, LightningSchedule
from .study_route import register as _register_study_page
from .upscale_nodes import LoadUpscaleModel, UpscaleFrames
from .video_nodes import EncodeFrames, LoadVideoFrames

NODES = [LoadMotionModule, LoadMotionLoRA, ApplyMotionModule, LightningSampler, LightningSchedule,
         ContextOptionsNode, DecodeFrames, LoadUpscaleModel, UpscaleFrames, PromptTravel, LoadVideoFrames,
         EncodeFrames, ClipMetrics]

_register_model_folders()
_register_memory_route()
_register_app_page()
_register_study_page()


class AnimateDiffLightningExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> AnimateDiffLightningExtension:
    return AnimateDiffLightningExtension()
