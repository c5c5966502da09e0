"""AnimateDiff temporal transformer, in the original (guoyww) module and key layout.

Numerics follow the original AnimateDiff implementation, which is what every released motion module (Lightning
included) was trained with:
  * GroupNorm over each frame on its own (the input is (batch*frames, C, H, W), so a plain group_norm is per
    frame). diffusers normalises across all frames instead; that is a different function.
  * A sinusoidal position table added to the normed tokens right before q/k/v of each attention block; the residual
    is the un-encoded stream.
  * 8 heads, GEGLU feed-forward with 4x width, zero-initialised proj_out at train time.

The module runs 21 times per UNet pass, so the forward keeps copies of the (B*F, H*W, C) activations to the two
layout changes it cannot avoid (into and out of the (B*H*W, F, C) token layout), casts each position table once per
device and dtype (not on every call), and adds residuals in place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .windows import transformer_windows

HEADS = 8
GROUPS = 32

# SD1.5 UNet widths. The motion module mirrors them block for block.
SD15_DOWN_CHANNELS = (320, 640, 1280, 1280)
SD15_MID_CHANNELS = 1280
MODULES_PER_DOWN_BLOCK = 2
MODULES_PER_UP_BLOCK = 3


class MotionModuleError(ValueError):
    """A motion-module file or call that cannot work; the message says what to do."""

    # ComfyUI reports an error's type as module.qualname unless the module is builtins, and the module of a custom
    # node's class is its folder path ("/.../custom_nodes/<pack>.motion.module.MotionModuleError"); as builtins it
    # reads MotionModuleError, like ValueError, in the UI and in tracebacks.
    __module__ = "builtins"


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """The (1, length, dim) table AnimateDiff registers as `pos_encoder.pe`."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


class PositionalEncoding(nn.Module):
    def __init__(self, dim: int, length: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(length, dim))
        self._cast = None   # (pe it was made from, pe's version, pe cast to the activations' device and dtype)

    @property
    def length(self) -> int:
        return self.pe.shape[1]

    def table(self, frames: int, like: torch.Tensor) -> torch.Tensor:
        """The first `frames` rows as (1, frames, dim) in like's device and dtype.

        The table is kept float32 (loader.build) while activations are usually fp16/bf16: the cast is made once and
        reused until the buffer is replaced (moved between devices) or written to (a state-dict load).
        """
        pe = self.pe
        if pe.dtype == like.dtype and pe.device == like.device:
            return pe[:, :frames]
        if torch.compiler.is_compiling():   # a compiled graph folds the cast in; the cache would only break it
            return pe[:, :frames].to(device=like.device, dtype=like.dtype)
        cast = self._cast
        if cast is None or cast[0] is not pe or cast[1] != pe._version or cast[2].dtype != like.dtype \
                or cast[2].device != like.device:
            cast = self._cast = (pe, pe._version, pe.to(device=like.device, dtype=like.dtype))
        return cast[2][:, :frames]


class TemporalAttention(nn.Module):
    """Self-attention along the frame axis ("VersatileAttention" in the original code)."""

    def __init__(self, dim: int, pe_length: int, ops=nn):
        super().__init__()
        self.heads = HEADS
        self.to_q = ops.Linear(dim, dim, bias=False)
        self.to_k = ops.Linear(dim, dim, bias=False)
        self.to_v = ops.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([ops.Linear(dim, dim)])
        self.pos_encoder = PositionalEncoding(dim, pe_length)

    def forward(self, x: torch.Tensor, lora: dict | None = None) -> torch.Tensor:
        # x: normed tokens (B*H*W, F, C); written to in place (the caller owns it and does not reuse it).
        # lora: {"to_q": low-rank side path, ...} from motion/lora.py, or None.
        x += self.pos_encoder.table(x.shape[1], x)
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        if lora:
            q, k, v = (_add_lora(t, lora, name, x) for t, name in ((q, "to_q"), (k, "to_k"), (v, "to_v")))
        out = attention(q, k, v, self.heads)
        result = self.to_out[0](out)
        return _add_lora(result, lora, "to_out", out) if lora else result


def _add_lora(y: torch.Tensor, lora: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    path = lora.get(name)
    if path is not None:
        y += path(x)
    return y


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, ops=nn):
        super().__init__()
        self.proj = ops.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return F.gelu(gate).mul_(hidden)   # in place: the 4x-wide activations are the module's largest


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4, ops=nn):
        super().__init__()
        # Index 1 is the (parameter-free) dropout slot of the original, kept so keys read `net.0` and `net.2`.
        self.net = nn.ModuleList([GEGLU(dim, dim * mult, ops), nn.Identity(), ops.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, pe_length: int, ops=nn):
        super().__init__()
        self.attention_blocks = nn.ModuleList([TemporalAttention(dim, pe_length, ops) for _ in range(2)])
        self.norms = nn.ModuleList([ops.LayerNorm(dim) for _ in range(2)])
        self.ff = FeedForward(dim, ops=ops)
        self.ff_norm = ops.LayerNorm(dim)

    def forward(self, x: torch.Tensor, lora: dict | None = None, index: int = 0) -> torch.Tensor:
        for a, (attention, norm) in enumerate(zip(self.attention_blocks, self.norms)):
            y = attention(norm(x), lora.get((index, a)) if lora else None)
            y += x
            x = y
        y = self.ff(self.ff_norm(x))
        y += x
        return y


class TemporalTransformer3D(nn.Module):
    def __init__(self, dim: int, pe_length: int, ops=nn):
        super().__init__()
        self.norm = ops.GroupNorm(GROUPS, dim, eps=1e-6, affine=True)
        self.proj_in = ops.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(dim, pe_length, ops)])
        self.proj_out = ops.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, lora: dict | None = None) -> torch.Tensor:
        bf, c, h, w = x.shape
        b = bf // frames
        # Per-frame GroupNorm: each of the B*F samples is normalised on its own, as in the original.
        normed = self.norm(x)
        tokens = normed.reshape(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
        del normed
        hidden = self.proj_in(tokens)
        del tokens
        for index, block in enumerate(self.transformer_blocks):
            hidden = block(hidden, lora, index)
        hidden = self.proj_out(hidden)
        # One allocation for the way back: the add writes straight into x's (B, F, C, H, W) layout. reshape, not
        # view: x may arrive non-contiguous (a channels-last UNet, a slice of a larger batch).
        out = x.reshape(b, frames, c, h, w) + hidden.view(b, h, w, frames, c).permute(0, 3, 4, 1, 2)
        return out.reshape(bf, c, h, w)


class VanillaTemporalModule(nn.Module):
    """One motion module as injected into a UNet block. Input and output: (batch*frames, C, H, W)."""

    # True when the layers cast their weights to the activations' dtype on every call (ComfyUI's manual cast: weights
    # stored in fp16, computed in fp32 on a device without fast fp16). Then the module computes in the dtype the
    # activations arrive in; otherwise it computes in its weights' dtype. Set by MotionModel.set_weight_casting.
    casts_weights = False

    def __init__(self, dim: int, pe_length: int, ops=nn):
        super().__init__()
        self.temporal_transformer = TemporalTransformer3D(dim, pe_length, ops)

    @property
    def pe_length(self) -> int:
        return self.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.length

    def forward(self, x: torch.Tensor, frames: int | None = None, lora: dict | None = None, windows=None,
                granularity: str = "attention") -> torch.Tensor:
        """lora: this module's entry of a motion.lora.LoRASet ({(block, attention): {projection: path}}), or None.
        windows: a motion.windows.FrameWindows over the `frames` frames (context windows inside the module), or None
        for one pass over all frames; granularity: what runs per window (motion/windows.py)."""
        if frames is None:
            raise MotionModuleError(
                "motion module called without a frame count: it must be run through the pack's "
                "forward_timestep_embed patch (apply the motion module with the pack's Apply node)")
        if frames < 1 or x.shape[0] % frames:
            raise MotionModuleError(f"batch of {x.shape[0]} latents is not a whole number of {frames}-frame clips")
        if windows is not None and windows.single:
            windows = None   # one window over the whole clip is the plain forward, bit for bit
        if windows is not None and windows.frames != frames:
            raise MotionModuleError(f"context windows over {windows.frames} frames for a clip of {frames}")
        seen = frames if windows is None else windows.length
        if seen > self.pe_length:
            raise MotionModuleError(
                f"{seen} frames reach past this motion module's position table ({self.pe_length} frames). "
                f"Use context windows (context length <= {self.pe_length}) or fewer frames.")
        weight_dtype = self.temporal_transformer.proj_in.weight.dtype
        if self.casts_weights or x.dtype == weight_dtype or \
                weight_dtype not in (torch.float16, torch.bfloat16, torch.float32):
            return self._run(x, frames, lora, windows, granularity)
        return self._run(x.to(weight_dtype), frames, lora, windows, granularity).to(x.dtype)

    def _run(self, x, frames, lora, windows, granularity):
        if windows is None:
            return self.temporal_transformer(x, frames, lora)
        return transformer_windows(self.temporal_transformer, x, frames, windows, lora, granularity)


class MotionBlock(nn.Module):
    def __init__(self, dim: int, count: int, pe_length: int, ops=nn):
        super().__init__()
        self.motion_modules = nn.ModuleList([VanillaTemporalModule(dim, pe_length, ops) for _ in range(count)])


@dataclass(frozen=True)
class MotionConfig:
    """What a motion-module file holds; enough to build the matching nn.Module."""
    pe_length: int = 32
    has_mid_block: bool = True
    down_channels: tuple = SD15_DOWN_CHANNELS
    mid_channels: int = SD15_MID_CHANNELS


class MotionModel(nn.Module):
    """All temporal modules of one file: down_blocks.{0..3} (2 each), up_blocks.{0..3} (3 each), optional mid."""

    def __init__(self, config: MotionConfig, ops=nn):
        super().__init__()
        self.config = config
        self.down_blocks = nn.ModuleList(
            [MotionBlock(c, MODULES_PER_DOWN_BLOCK, config.pe_length, ops) for c in config.down_channels])
        self.up_blocks = nn.ModuleList(
            [MotionBlock(c, MODULES_PER_UP_BLOCK, config.pe_length, ops) for c in reversed(config.down_channels)])
        self.mid_block = MotionBlock(config.mid_channels, 1, config.pe_length, ops) if config.has_mid_block else None

    def set_weight_casting(self, casts: bool) -> None:
        """casts: the ops given to the constructor cast weights to the activations' dtype per call (see
        VanillaTemporalModule.casts_weights)."""
        for module in self.modules():
            if isinstance(module, VanillaTemporalModule):
                module.casts_weights = casts

    def placements(self):
        """(unet_part, unet_block_index, module) for every temporal module, in UNet order.

        unet_part is "input", "middle" or "output", matching the SD1.5 UNet's input_blocks / middle_block /
        output_blocks (input block 0 is conv_in and every third one after it a downsampler, so down block i,
        module j sits in input block 3*i + j + 1; up block i, module j in output block 3*i + j).
        """
        for i, block in enumerate(self.down_blocks):
            for j, module in enumerate(block.motion_modules):
                yield "input", 3 * i + j + 1, module
        if self.mid_block is not None:
            yield "middle", 0, self.mid_block.motion_modules[0]
        for i, block in enumerate(self.up_blocks):
            for j, module in enumerate(block.motion_modules):
                yield "output", 3 * i + j, module
