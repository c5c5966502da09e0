"""VAE decode of long clips a few frames at a time.

Core's VAE Decode picks its batch from free memory and a per-frame estimate (comfy/sd.py VAE.decode), so with RAM to
spare it decodes a whole 64-frame clip at once: at 64-128 px the decoder's activations for every frame are alive
together, and the clip's peak memory grows with its length. Here the clip goes through core's decode in slices of
`frames_per_batch`, into one preallocated IMAGE: the peak is the finished frames plus one slice's activations.
"""
import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io

from .types import CATEGORY

DEFAULT_FRAMES_PER_BATCH = 8


def decode_in_slices(vae, latent: torch.Tensor, per_batch: int, on_slice=None) -> torch.Tensor:
    out = None
    for start in range(0, latent.shape[0], per_batch):
        comfy.model_management.throw_exception_if_processing_interrupted()
        images = vae.decode(latent[start:start + per_batch])
        images = images.reshape(-1, *images.shape[-3:])   # video VAEs give (B, T, H, W, C)
        if out is None:
            out = torch.empty((latent.shape[0], *images.shape[1:]), dtype=images.dtype, device=images.device)
        out[start:start + images.shape[0]] = images
        if on_slice is not None:
            on_slice(images.shape[0])
    return out


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
                                     "faster. 8 keeps a 64-frame clip's decode within its 16-frame footprint."),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, samples, vae, frames_per_batch) -> io.NodeOutput:
        latent = samples["samples"]
        if latent.is_nested:
            latent = latent.unbind()[0]
        pbar = comfy.utils.ProgressBar(latent.shape[0])
        return io.NodeOutput(decode_in_slices(vae, latent, frames_per_batch, pbar.update))
