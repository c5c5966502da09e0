"""The pack's own wire types. Everything else reuses ComfyUI core types (MODEL, LATENT, IMAGE, UPSCALE_MODEL...)."""
from comfy_api.latest import io

MotionModel = io.Custom("ADLIGHTNING_MOTION_MODEL")
ContextOptions = io.Custom("ADLIGHTNING_CONTEXT_OPTIONS")

CATEGORY = "AnimateDiff-Lightning"
