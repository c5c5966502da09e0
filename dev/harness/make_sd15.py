"""Write a random-weight, full-size SD1.5 checkpoint built from ComfyUI's own model classes.

Run with ComfyUI importable (dev/harness/models.py runs it in a subprocess from the ComfyUI folder):
    python -m dev.harness.make_sd15 OUT.safetensors
The weights are seeded, so every machine makes the same file. ComfyUI's layers skip weight init (they expect a
checkpoint), so every tensor is filled here: fan-in-scaled normals for weights, identity norms, small biases.
"""
import math
import sys

import torch

SD15_UNET = {  # the SD1.5 architecture in ComfyUI's unet_config terms
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
    "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_temporal_attention": False, "use_temporal_resblock": False,
}
SD15_VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
            "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def fill_random(module: torch.nn.Module, gen: torch.Generator) -> None:
    for name, tensor in module.state_dict(keep_vars=True).items():
        data = tensor.data if isinstance(tensor, torch.nn.Parameter) else tensor
        if not data.is_floating_point():
            continue
        leaf = name.rsplit(".", 1)[-1]
        if data.ndim >= 2:
            fan_in = math.prod(data.shape[1:])
            value = torch.randn(data.shape, generator=gen) / math.sqrt(fan_in)
        elif leaf == "weight":
            value = torch.ones(data.shape)   # norm scales
        else:
            value = 0.01 * torch.randn(data.shape, generator=gen)
        data.copy_(value.to(data.dtype))


def build_state_dict(seed: int = 1234) -> dict:
    from comfy.cli_args import args
    args.cpu = True  # read when comfy.model_management is first imported; this machine may have no GPU driver
    import comfy.clip_model
    import comfy.ldm.models.autoencoder
    import comfy.model_detection
    import comfy.sd1_clip

    gen = torch.Generator().manual_seed(seed)
    model_config = comfy.model_detection.model_config_from_unet_config(dict(SD15_UNET))
    if type(model_config).__name__ != "SD15":
        raise RuntimeError(f"ComfyUI did not recognise the SD1.5 config (got {type(model_config).__name__})")
    unet = model_config.get_model({}).diffusion_model
    fill_random(unet, gen)
    sd = {f"model.diffusion_model.{k}": v for k, v in unet.state_dict().items()}
    del unet

    clip = comfy.sd1_clip.SDClipModel(dtype=torch.float32)
    fill_random(clip.transformer, gen)
    # The position ids are integers in real checkpoints; embeddings need a sane scale for the text encoder.
    for k, v in clip.transformer.state_dict().items():
        if k in ("text_projection.weight", "logit_scale"):
            continue
        sd[f"cond_stage_model.transformer.{k}"] = v
    del clip

    vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(SD15_VAE), embed_dim=4)
    fill_random(vae, gen)
    sd.update({f"first_stage_model.{k}": v for k, v in vae.state_dict().items()})
    return {k: v.to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous() for k, v in sd.items()}


def save_state_dict(sd: dict, out: str) -> None:
    """Write `sd` to `out` through a temporary file, so an interrupted run never leaves a half-written fixture."""
    import os
    import safetensors.torch
    tmp = f"{out}.{os.getpid()}.partial"
    safetensors.torch.save_file(sd, tmp)
    os.replace(tmp, out)
    print(f"wrote {out}: {len(sd)} tensors, {sum(v.numel() for v in sd.values()) / 1e6:.0f}M values")


def main(out: str) -> None:
    save_state_dict(build_state_dict(), out)


if __name__ == "__main__":
    main(sys.argv[1])
