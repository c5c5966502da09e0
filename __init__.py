"""AnimateDiff-Lightning for ComfyUI: few-step text-to-video from any SD1.5 checkpoint.

ComfyUI imports this file as the pack. The test runner imports it too (the repo root is a package), outside
ComfyUI, to reach the pure-torch packages motion/ and samplers/; there the ComfyUI entry point is simply absent.
"""
import importlib.util

WEB_DIRECTORY = "./js"

if importlib.util.find_spec("comfy_api") is not None:
    from .nodes import comfy_entrypoint  # noqa: F401
