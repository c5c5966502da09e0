"""Model folders shared with AnimateDiff-Evolved (same names), so users keep one copy of each file. Stock ComfyUI has
neither folder, so the first start creates them (empty) where the README says each file goes."""
import logging
import os

import folder_paths

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
        if name in folder_paths.folder_names_and_paths:
            paths, exts = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            folder_paths.folder_names_and_paths[name] = (paths, set(exts) | EXTENSIONS)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], set(EXTENSIONS))
