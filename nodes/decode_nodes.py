"""VAE decode of long clips a few frames at a time.

Core's VAE Decode picks its batch from free memory and a per-frame estimate (comfy/sd.py VAE.decode), so with RAM to
spare it decodes a whole 64-frame clip at once: at 64-128 px the decoder's activations for every frame are alive
together, and the clip's peak memory grows with its length. Here the clip goes through core's decode in slices of
`frames_per_batch`, into one preallocated IMAGE: the peak is the finished frames plus one slice's activations.
"""
import comfy.model_management
import comfy.utils
from comfy_api.latest import io

from ..frames.slices import DEFAULT_FRAMES_PER_BATCH, in_slices
from .types import CATEGORY


class DecodeFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ADLightning_DecodeFrames",
            display_name="VAE Decode (long clips)",
            category=CATEGORY,
            description="Decodes a clip's latents a few frames at a time, so memory does not grow with the clip's "
                        "length. Same pictures as VAE Decode.",
            inputs=[
                io.Latent.Input("samples", tooltip="The sampler's LATENT, one latent per frame."),
                io.Vae.Input("vae", tooltip="The checkpoint's VAE."),
                io.Int.Input("frames_per_batch", default=DEFAULT_FRAMES_PER_BATCH, min=1, max=256,
                             tooltip="Frames decoded together. Fewer frames use less memory; more can be a little "
                                     "faster. The default keeps a 64-frame clip's decode within its 16-frame "
                                     "footprint."),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, samples, vae, frames_per_batch) -> io.NodeOutput:
        latent = samples["samples"]
        if latent.is_nested:
            latent = latent.unbind()[0]
        pbar = comfy.utils.ProgressBar(latent.shape[0])
        return io.NodeOutput(in_slices(vae.decode, latent, frames_per_batch,
                                       comfy.model_management.throw_exception_if_processing_interrupted, pbar.update))
