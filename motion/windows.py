"""Context windows inside the motion module: the UNet runs once on every frame, only the frame-mixing work of each
temporal layer runs window by window, and the windows' results are blended with the fuse weights.

Every spatial layer of an SD1.5 UNet treats frames independently, so running the whole UNet per window (the
"whole UNet" mode, nodes/context_handler.py) repeats their work on every frame two or more windows share. Here the
UNet's batch is the whole clip; each temporal layer sees its (batch*frames, C, H, W) input and:

  granularity "attention" (the default, as diffusers' FreeNoise blocks): the per-frame layers (GroupNorm, proj_in,
    LayerNorms, feed-forward, proj_out) run once per frame; only each temporal self-attention runs per window (its
    position table restarting at 0 in every window, as in a window of the whole-UNet mode), and the windows'
    attention outputs are blended before the residual add;
  granularity "transformer": the whole temporal transformer runs per window and its outputs are blended.

Blending: a frame's value is the weighted mean of the windows that hold it, sum(w * y) / sum(w), the same formula
ComfyUI's context handler applies to whole-UNet predictions. dev/benchmarks/window_seams.py (--layers) compares the
two granularities with the whole-UNet mode on its exact video prior; docs/long_videos.md has the table.
Pure torch: no ComfyUI here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .attention import attention as _attention   # renamed: _attention_windows' argument is `attention`

GRANULARITIES = ("attention", "transformer")


@dataclass(frozen=True)
class FrameWindows:
    """One step's windows over a clip: frame indices per window and the blend weight of each of its frames."""
    layout: tuple            # tuple of tuples of frame indices
    weights: tuple           # one 1-D float tensor per window, len == window length
    frames: int
    _shares: dict = field(default_factory=dict, init=False, repr=False, compare=False)   # see shares()

    @classmethod
    def of(cls, layout, weights, frames: int) -> "FrameWindows":
        return cls(tuple(tuple(int(i) for i in w) for w in layout), tuple(torch.as_tensor(w, dtype=torch.float32)
                                                                          for w in weights), frames)

    @property
    def single(self) -> bool:
        """One window holding every frame in order: the plain forward is exactly this."""
        return len(self.layout) == 1 and self.layout[0] == tuple(range(self.frames))

    @property
    def length(self) -> int:
        return max(len(w) for w in self.layout)

    def shares(self, like: torch.Tensor) -> list:
        """Each window's weights divided by the summed weight of each of its frames (a frame's shares sum to 1), in
        like's device and dtype, made once per device and dtype."""
        key = (like.device, like.dtype)
        cache = self._shares
        if key not in cache:
            norm = torch.zeros(self.frames, dtype=torch.float64)
            for window, weight in zip(self.layout, self.weights):
                norm.index_add_(0, torch.tensor(window), weight.double())
            cache[key] = [(weight.double() / norm[list(window)]).to(device=like.device, dtype=like.dtype)
                          for window, weight in zip(self.layout, self.weights)]
        return cache[key]


def _fuse(parts, windows: FrameWindows, dim: int, like: torch.Tensor) -> torch.Tensor:
    """Weighted mean over windows of `parts` (each like's shape with the window's frames on `dim`)."""
    shape = list(like.shape)
    shape[dim] = windows.frames
    total = torch.zeros(shape, dtype=like.dtype, device=like.device)
    view = [1] * len(shape)
    view[dim] = -1
    for window, share, part in zip(windows.layout, windows.shares(like), parts):
        total.index_add_(dim, torch.tensor(window, device=like.device), part * share.view(view))
    return total


def _project(linear, x: torch.Tensor, lora, name: str) -> torch.Tensor:
    y = linear(x)
    path = lora.get(name) if lora else None
    if path is not None:
        y = y + path(x)
    return y


def _frames_of(window: tuple):
    """A slice when the window's frames are consecutive (every schedule but a looped window that wraps)."""
    if window[-1] - window[0] == len(window) - 1:
        return slice(window[0], window[-1] + 1)
    return list(window)


def _attention_windows(attention, normed: torch.Tensor, windows: FrameWindows, lora) -> torch.Tensor:
    """TemporalAttention (motion/module.py) over `windows` of normed (tokens, F, C), blended per frame.

    Computes what running the attention on each window's frames and taking the weighted mean of the outputs gives,
    with the projections once per frame: to_q/k/v (and their LoRA paths) have no bias, so a window's q is
    to_q(x) + to_q(position row of the frame in that window); to_out is affine, so it commutes with the weighted
    mean (the weights of a frame sum to 1) and runs once on the blended attention output."""
    table = attention.pos_encoder.table(windows.length, normed)[0]
    q, k, v = (_project(getattr(attention, name), normed, lora, name) for name in ("to_q", "to_k", "to_v"))
    pe = {name: _project(getattr(attention, name), table, lora, name) for name in ("to_q", "to_k", "to_v")}
    total = torch.zeros_like(normed)
    for window, weight in zip(windows.layout, windows.shares(normed)):
        frames, n = _frames_of(window), len(window)
        qw, kw, vw = (t[:, frames] + pe[name][:n] for t, name in ((q, "to_q"), (k, "to_k"), (v, "to_v")))
        out = _attention(qw, kw, vw, attention.heads).mul_(weight.view(1, -1, 1))
        if isinstance(frames, slice):
            total[:, frames] += out
        else:
            total.index_add_(1, torch.tensor(frames, device=normed.device), out)
    return _project(attention.to_out[0], total, lora, "to_out")


def _block_windows(block, x: torch.Tensor, windows: FrameWindows, lora, index: int) -> torch.Tensor:
    """TemporalTransformerBlock.forward with each attention run per window. x: (B*H*W, F, C)."""
    for a, (attention, norm) in enumerate(zip(block.attention_blocks, block.norms)):
        y = _attention_windows(attention, norm(x), windows, lora.get((index, a)) if lora else None)
        y += x
        x = y
    y = block.ff(block.ff_norm(x))
    y += x
    return y


def transformer_windows(transformer, x: torch.Tensor, frames: int, windows: FrameWindows, lora=None,
                        granularity: str = "attention") -> torch.Tensor:
    """TemporalTransformer3D (motion/module.py) over a clip of `frames` frames in `windows`. x: (B*F, C, H, W)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown window granularity {granularity!r}; one of {GRANULARITIES}")
    bf, c, h, w = x.shape
    b = bf // frames
    if granularity == "transformer":
        clip = x.reshape(b, frames, c, h, w)
        outs = []
        for window in windows.layout:
            part = clip[:, list(window)].reshape(b * len(window), c, h, w)
            outs.append(transformer(part, len(window), lora).view(b, len(window), c, h, w))
        return _fuse(outs, windows, 1, clip).reshape(bf, c, h, w)
    normed = transformer.norm(x)
    tokens = normed.reshape(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
    del normed
    hidden = transformer.proj_in(tokens)
    del tokens
    for index, block in enumerate(transformer.transformer_blocks):
        hidden = _block_windows(block, hidden, windows, lora, index)
    hidden = transformer.proj_out(hidden)
    out = x.reshape(b, frames, c, h, w) + hidden.view(b, h, w, frames, c).permute(0, 3, 4, 1, 2)
    return out.reshape(bf, c, h, w)
