"""Model folders shared with AnimateDiff-Evolved (same names), so users keep one copy of each file."""
import os

import folder_paths

MOTION_MODELS = "animatediff_models"
MOTION_LORAS = "animatediff_motion_lora"
EXTENSIONS = {".safetensors", ".sft", ".ckpt", ".pt", ".pth"}


def register() -> None:
    for name in (MOTION_MODELS, MOTION_LORAS):
        default = os.path.join(folder_paths.models_dir, name)
        if name in folder_paths.folder_names_and_paths:
            paths, exts = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            folder_paths.folder_names_and_paths[name] = (paths, set(exts) | EXTENSIONS)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], set(EXTENSIONS))
