"""Model folders shared with AnimateDiff-Evolved (same names), so users keep one copy of each file. Stock ComfyUI has
neither folder, so the first start creates them (empty) where the README says each file goes."""
import logging
import os

import folder_paths

from .comfy_compat import add_model_extensions

MOTION_MODELS = "animatediff_models"
MOTION_LORAS = "animatediff_motion_lora"
EXTENSIONS = {".safetensors", ".sft", ".ckpt", ".pt", ".pth"}


def register() -> None:
    for name in (MOTION_MODELS, MOTION_LORAS):
        default = os.path.join(folder_paths.models_dir, name)
        try:
            os.makedirs(default, exist_ok=True)
        except OSError as e:   # a read-only install: the files can still come from extra_model_paths.yaml
            logging.warning("[AnimateDiff-Lightning] cannot create %s (%s); put motion files there or in a folder "
                            "named %s in extra_model_paths.yaml", default, e.strerror, name)
        # Appends to a folder another pack (or extra_model_paths.yaml) already registered, else creates it.
        folder_paths.add_model_folder_path(name, default)
        add_model_extensions(name, EXTENSIONS)
