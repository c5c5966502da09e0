"""ComfyUI glue: node classes and the extension; the math lives in motion/, samplers/, frames/, upscaling/, metrics/."""
from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .app_route import register as register_app_page
from .context_nodes import ContextOptionsNode
from .decode_nodes import DecodeFrames
from .keyframe_nodes import ExtendVideo, JoinChunks, PinFrames
from .lora_nodes import LoadMotionLoRA
from .metrics_nodes import ClipMetrics
from .model_folders import register as register_model_folders
from .motion_nodes import ApplyMotionModule, LoadMotionModule
from .prompt_nodes import PromptTravel
from .sampler_nodes import LightningSampler, LightningSchedule
from .upscale_nodes import LoadUpscaleModel, UpscaleFrames
from .video_nodes import EncodeFrames, LoadVideoFrames

NODES = [LoadMotionModule, LoadMotionLoRA, ApplyMotionModule, LightningSampler, LightningSchedule,
         ContextOptionsNode, DecodeFrames, LoadUpscaleModel, UpscaleFrames, PromptTravel, LoadVideoFrames,
         EncodeFrames, ClipMetrics, PinFrames, ExtendVideo, JoinChunks]


class AnimateDiffLightningExtension(ComfyExtension):
    @override
    async def on_load(self) -> None:
        # Core awaits this before it lists the nodes and before it adds the route table to its app, so folders and
        # routes exist from the first request on; importing the pack changes nothing.
        register_model_folders()
        register_app_page()

    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)
