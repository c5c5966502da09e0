"""Model folders shared with AnimateDiff-Evolved (same names), so users keep one copy of each file. Stock ComfyUI has
neither folder, so the first start creates them (empty) where the README's model table says each file goes."""
import logging
import os

import folder_paths

from .comfy_compat import add_model_extensions

MOTION_MODELS = "animatediff_models"
MOTION_LORAS = "animatediff_motion_lora"
EXTENSIONS = {".safetensors", ".sft", ".ckpt", ".pt", ".pth"}
# Where files that belong elsewhere are usually dropped, and what they are there.
NEIGHBOURS = {"checkpoints": "an SD1.5 checkpoint's folder", "loras": "the image LoRAs' folder",
              MOTION_MODELS: "the motion modules' folder", MOTION_LORAS: "the Motion LoRAs' folder",
              "upscale_models": "the upscale models' folder", "controlnet": "the ControlNets' folder"}


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


def not_in_folder(name: str, folder: str, what: str) -> str:
    """The validation message for a file name the folder does not list: where the file is instead, if it is in a
    neighbouring model folder (a motion module dropped into checkpoints/), and where it belongs."""
    for other, kind in NEIGHBOURS.items():
        try:
            there = other != folder and name in folder_paths.get_filename_list(other)
        except KeyError:   # a folder this ComfyUI does not know
            there = False
        if there:
            return (f"'{name}' is in models/{other} ({kind}), not in models/{folder}: {what} belong in "
                    f"models/{folder}. Move the file there and press R in ComfyUI (or restart it)")
    return (f"'{name}' is not in models/{folder}; put {what} there and press R in ComfyUI (or restart it), or pick "
            f"one of the files it has")
