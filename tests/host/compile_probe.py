"""Run with COMFYUI_PATH on sys.path (test_compile_host.py does): ComfyUI's own SD1.5-layout UNet (narrow widths, random
weights) with the pack's temporal modules inserted where nodes/motion_patch.py puts them and run through the same
forward_timestep_embed patch, traced by torch.compile the way core's TorchCompileModel does (the whole
diffusion_model). Prints one JSON line: graph count, graph breaks and where, and the compiled-vs-eager difference.

Attention is ComfyUI's PyTorch attention, the one it uses on CUDA (on CPU it picks sub-quadratic attention, whose
free-memory query breaks graphs on its own, with or without the pack).
"""
import collections
import importlib
import json
import os
import sys
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from comfy.cli_args import args  # noqa: E402

args.cpu = True
import comfy.ldm.modules.attention as attention  # noqa: E402
import comfy.ops  # noqa: E402
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: E402

from harness.make_sd15 import SD15_UNET, fill_random  # noqa: E402

# nodes/motion_patch.py alone, as a sub-module of the pack (its relative imports), without the pack's node
# registration (folder_paths, the server).
for name, path in (("adl_pack", REPO), ("adl_pack.nodes", REPO / "nodes")):
    package = types.ModuleType(name)
    package.__path__ = [str(path)]
    sys.modules[name] = package
pack = importlib.import_module("adl_pack.nodes.motion_patch")
module = importlib.import_module("adl_pack.motion.module")   # the classes the patch looks for

attention.optimized_attention = attention.optimized_attention_masked = attention.attention_pytorch
config = {k: v for k, v in SD15_UNET.items() if k not in ("use_temporal_attention", "use_temporal_resblock")}
config.update(model_channels=32, context_dim=32)
unet = UNetModel(**config, operations=comfy.ops.disable_weight_init).eval()
fill_random(unet, torch.Generator().manual_seed(0))
motion = module.MotionModel(module.MotionConfig(down_channels=(32, 64, 128, 128), mid_channels=128),
                     ops=comfy.ops.disable_weight_init).eval()
fill_random(motion, torch.Generator().manual_seed(1))
for layer in motion.modules():
    if hasattr(layer, "pe"):
        layer.pe = module.sinusoidal_table(layer.pe.shape[1], layer.pe.shape[2])


class Patcher:   # what _inject reads from a ModelPatcher
    def __init__(self):
        self.model = type("Base", (), {"diffusion_model": unet})()

    def get_additional_models_with_key(self, key):
        return [type("MotionPatcher", (), {"model": motion})()]


pack._inject(Patcher())
frames = 16
x = torch.randn(2 * frames, 4, 8, 8, generator=torch.Generator().manual_seed(2))
t = torch.full((2 * frames,), 500.0)
context = torch.randn(2 * frames, 77, 32, generator=torch.Generator().manual_seed(3))
options = {"patches": {"forward_timestep_embed_patch": [(pack.VanillaTemporalModule, pack._run_temporal)]},
           "cond_or_uncond": [0, 1]}
with torch.no_grad():
    eager = unet(x, t, context, transformer_options=options)
    explained = torch._dynamo.explain(unet)(x, t, context, transformer_options=options)
    torch._dynamo.reset()
    compiled = torch.compile(unet, backend=os.environ.get("BACKEND", "aot_eager"))(x, t, context,
                                                                                  transformer_options=options)
where = collections.Counter(
    " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(list(r.user_stack)[-2:]))
    or str(r.reason)[:200] for r in explained.break_reasons)
print(json.dumps({"graphs": explained.graph_count, "breaks": explained.graph_break_count, "where": where,
                  "temporal_modules": sum(isinstance(m, pack.VanillaTemporalModule) for m in unet.modules()),
                  "max_difference": (compiled - eager).abs().max().item()}))
