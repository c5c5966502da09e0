"""ComfyUI glue: node classes only; the math lives in motion/ and samplers/."""
from .motion_nodes import ApplyMotionModule, LoadMotionModule
from .sampler_nodes import LightningSampler, LightningSchedule
from .upscale_nodes import LoadUpscaleModel, UpscaleFrames

NODES = [LoadMotionModule, ApplyMotionModule, LightningSampler, LightningSchedule, LoadUpscaleModel, UpscaleFrames]
