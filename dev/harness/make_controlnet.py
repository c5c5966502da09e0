"""Write a random-weight, full-size SD1.5 ControlNet (lllyasviel's `control_model.*` layout) built from ComfyUI's own
ControlNet class, for the host tier's v2v tests (the shipped workflow names control_v11p_sd15_canny).

Run with ComfyUI importable (dev/harness/models.py runs it in a subprocess from the ComfyUI folder):
    python -m dev.harness.make_controlnet OUT.safetensors
Seeded, so every machine makes the same file. The zero convolutions (zero_convs, middle_block_out) are scaled down:
trained ControlNets grow them from zero, and full-scale random ones would swamp the random UNet's features.
"""
import sys

import torch

from .make_sd15 import SD15_UNET, fill_random, save_state_dict

ZERO_CONV_SCALE = 0.05


def build_state_dict(seed: int = 4321) -> dict:
    from comfy.cli_args import args
    args.cpu = True  # read when comfy.model_management is first imported; this machine may have no GPU driver
    import comfy.cldm.cldm

    config = {k: v for k, v in SD15_UNET.items() if k != "out_channels"}
    net = comfy.cldm.cldm.ControlNet(hint_channels=3, dtype=torch.float32, **config)
    fill_random(net, torch.Generator().manual_seed(seed))
    sd = {}
    for k, v in net.state_dict().items():
        if k.startswith(("zero_convs.", "middle_block_out.")):
            v = v * ZERO_CONV_SCALE
        sd[f"control_model.{k}"] = v.to(torch.float16).contiguous()
    return sd


def main(out: str) -> None:
    save_state_dict(build_state_dict(), out)


if __name__ == "__main__":
    main(sys.argv[1])
