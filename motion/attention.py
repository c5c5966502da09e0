"""Multi-head self-attention along the frame axis: the one frame-mixing operation of a temporal layer, shared by the
plain forward (module.py) and the context windows inside the module (windows.py)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Largest token batch (B*H*W clips of F frames) handed to one scaled_dot_product_attention call. CUDA's flash and
# memory-efficient kernels put the batch in a grid dimension capped at 65,535 (cfg 2 at 1536x1536 is 73,728), and
# ComfyUI's own attention splits at 2**15 on NVIDIA for the same reason; each clip's attention is independent, so
# splitting changes no number.
SDPA_BATCH_LIMIT = 2 ** 15


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head self-attention of (N, F, C) q/k/v along F; returns (N, F, C). N above SDPA_BATCH_LIMIT is split."""
    n, f, c = q.shape
    split = (n, f, heads, c // heads)
    q, k, v = (t.reshape(split).transpose(1, 2) for t in (q, k, v))
    if n <= SDPA_BATCH_LIMIT:
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, f, c)
    out = torch.empty(split, dtype=q.dtype, device=q.device)
    for start in range(0, n, SDPA_BATCH_LIMIT):
        part = slice(start, start + SDPA_BATCH_LIMIT)
        out[part].transpose(1, 2).copy_(F.scaled_dot_product_attention(q[part], k[part], v[part]))
    return out.view(n, f, c)
