"""ComfyUI glue: node classes only; the math lives in motion/ and samplers/."""
from .context_nodes import ContextOptionsNode
from .motion_nodes import ApplyMotionModule, LoadMotionModule
from .sampler_nodes import LightningSampler, LightningSchedule

NODES = [LoadMotionModule, ApplyMotionModule, LightningSampler, LightningSchedule, ContextOptionsNode]
