"""AnimateDiff-Lightning for ComfyUI: few-step text-to-video from any SD1.5 checkpoint."""
from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .nodes import NODES
from .nodes.model_folders import register as _register_model_folders

WEB_DIRECTORY = "./js"

_register_model_folders()


class AnimateDiffLightningExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> AnimateDiffLightningExtension:
    return AnimateDiffLightningExtension()
