"""Pure-torch AnimateDiff motion modules: the network, file formats, loading and Motion LoRA math.

Nothing in this package imports ComfyUI, so it is tested on its own (tests/unit).
"""
from .formats import MotionInfo, lightning_steps_from_name, normalize
from .loader import load_motion_module, read_state_dict
from .module import MotionConfig, MotionModel, MotionModuleError, VanillaTemporalModule

__all__ = ["MotionConfig", "MotionInfo", "MotionModel", "MotionModuleError", "VanillaTemporalModule",
           "lightning_steps_from_name", "load_motion_module", "normalize", "read_state_dict"]
