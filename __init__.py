"""AnimateDiff-Lightning for ComfyUI: few-step text-to-video from any SD1.5 checkpoint."""
import importlib.util

WEB_DIRECTORY = "./js"

# pytest imports this file too (the repo root is a package) to reach the pure-torch motion/ and samplers/; outside
# ComfyUI there is no comfy_api, and no entry point to offer.
if importlib.util.find_spec("comfy_api") is not None:
    from typing_extensions import override

    from comfy_api.latest import ComfyExtension, io

    from .nodes import NODES
    from .nodes.model_folders import register as _register_model_folders

    _register_model_folders()

    class AnimateDiffLightningExtension(ComfyExtension):
        @override
        async def get_node_list(self) -> list[type[io.ComfyNode]]:
            return list(NODES)

    async def comfy_entrypoint() -> AnimateDiffLightningExtension:
        return AnimateDiffLightningExtension()
