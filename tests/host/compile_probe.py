"""Run with COMFYUI_PATH on sys.path (test_compile_host.py does): ComfyUI's own SD1.5-layout UNet (narrow widths, random
weights) with the pack's temporal modules inserted by the pack's own code (dev/harness/patched_unet.py), traced by
torch.compile the way core's TorchCompileModel does (the whole diffusion_model). Prints one JSON line: graph count,
graph breaks and where, the number of temporal modules, and the compiled-vs-eager difference.

Attention is ComfyUI's PyTorch attention, the one it uses on CUDA (on CPU it picks sub-quadratic attention, whose
free-memory query breaks graphs on its own, with or without the pack).
"""
import collections
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dev.harness import patched_unet  # noqa: E402

patch, module = patched_unet.pack_modules()
import comfy.ldm.modules.attention as attention  # noqa: E402

attention.optimized_attention = attention.optimized_attention_masked = attention.attention_pytorch
unet, motion = patched_unet.build(model_channels=32, context_dim=32)
patched_unet.insert(unet, motion)
frames, conds = 16, 2
x = torch.randn(conds * frames, 4, 8, 8, generator=torch.Generator().manual_seed(2))
t = torch.full((conds * frames,), 500.0)
context = torch.randn(conds * frames, 77, 32, generator=torch.Generator().manual_seed(3))
options = patched_unet.transformer_options(conds)
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
                  "temporal_modules": sum(isinstance(m, module.VanillaTemporalModule) for m in unet.modules()),
                  "max_difference": (compiled - eager).abs().max().item()}))
