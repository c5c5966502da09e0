"""The pack's own wire types. Everything else reuses ComfyUI core types (MODEL, LATENT, IMAGE, UPSCALE_MODEL...)."""
from comfy_api.latest import io

# Carries a motion_patch.MotionHandle (the loaded module's ModelPatcher, what the file is, the Motion LoRAs stacked on
# it), not the nn.Module (motion.module.MotionModel) itself; the id is what saved workflows name.
MotionModuleWire = io.Custom("ADLIGHTNING_MOTION_MODEL")
# Carries a samplers.windows.WindowOptions.
ContextOptions = io.Custom("ADLIGHTNING_CONTEXT_OPTIONS")

CATEGORY = "AnimateDiff-Lightning"
