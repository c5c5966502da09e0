"""Model folders shared with AnimateDiff-Evolved (same names), so users keep one copy of each file."""
import os

import folder_paths

from .comfy_compat import add_model_extensions

MOTION_MODELS = "animatediff_models"
MOTION_LORAS = "animatediff_motion_lora"
EXTENSIONS = {".safetensors", ".sft", ".ckpt", ".pt", ".pth"}


def register() -> None:
    for name in (MOTION_MODELS, MOTION_LORAS):
        # Appends to a folder another pack (or extra_model_paths.yaml) already registered, else creates it.
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))
        add_model_extensions(name, EXTENSIONS)
