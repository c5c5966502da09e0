"""AnimateDiff-Lightning for ComfyUI: few-step text-to-video from any SD1.5 checkpoint.

ComfyUI loads this folder as a package and calls `comfy_entrypoint` (its V3 extension API); the extension registers
the model folders and the app page's routes in its `on_load` hook and lists the nodes. Importing the package itself
touches nothing of ComfyUI, so tools, benchmarks and tests load it the same way (as `adlightning`, tools/__init__.py)
without a server.
"""
import importlib.util
import logging
import sys

WEB_DIRECTORY = "./js"
MIN_COMFYUI = "0.14.1"


async def comfy_entrypoint():
    try:
        from .nodes import AnimateDiffLightningExtension
    except ImportError as e:
        if importlib.util.find_spec("comfy_api") is None or "latest" in str(e):
            raise ImportError(f"AnimateDiff-Lightning needs ComfyUI {MIN_COMFYUI} or newer (its comfy_api.latest "
                              f"node API); update ComfyUI ({e})") from e
        raise
    return AnimateDiffLightningExtension()


if "folder_paths" in sys.modules and importlib.util.find_spec("comfy_api") is None:
    # A ComfyUI too old for the V3 node API never calls comfy_entrypoint; say why the nodes are missing.
    logging.error("[AnimateDiff-Lightning] this ComfyUI has no comfy_api (the V3 node API): the pack's nodes are not "
                  "loaded. Update ComfyUI to %s or newer.", MIN_COMFYUI)
