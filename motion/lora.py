"""Motion LoRA: low-rank updates of the temporal attentions' q/k/v/out projections, W' = W + s * (up @ down).

The update is applied as a low-rank side path at run time, y = W x + s * up (down x), never as a merged or dense
matrix. A dense delta of every patched projection is ~660 MB in float32 (what AnimateDiff-Evolved keeps per LoRA), and
merging into W would also need a backup of W of the same size on a CPU-only machine; the rank-64 factors are ~77 MB.
Because W is never written, removing a LoRA or changing its strength restores the base module exactly, and a
strength of 0 skips the path altogether (bit-identical output).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .formats import original_key
from .module import MotionModel, MotionModuleError, VanillaTemporalModule

PROJECTIONS = ("to_q", "to_k", "to_v", "to_out")

# key suffix variants seen in motion-LoRA files -> (projection, role)
_PAIR = re.compile(
    r"^(?P<attn>.+)\.(?:processor\.(?P<proj_a>to_q|to_k|to_v|to_out)_lora\.(?P<role_a>down|up)"
    r"|(?P<proj_b>to_q|to_k|to_v|to_out)(?:\.0)?\.(?:lora[._])?(?P<role_b>down|up|lora_A|lora_B|A|B)"
    r"(?:\.default(?:_0)?)?)\.weight$")
_ALPHA = re.compile(r"^(?P<attn>.+?)\.(?:processor\.)?(?P<proj>to_q|to_k|to_v|to_out)(?:_lora|\.0)?(?:\.lora)?\.alpha$")
_ROLE = {"down": "down", "lora_A": "down", "A": "down", "up": "up", "lora_B": "up", "B": "up"}
_STRIP = ("base_model.model.", "unet.", "module.")


@dataclass(frozen=True)
class LoRAPair:
    up: torch.Tensor      # (out, rank), float32
    down: torch.Tensor    # (rank, in), float32
    scale: float = 1.0    # alpha / rank when the file stores an alpha


@dataclass(frozen=True)
class MotionLoRA:
    """One parsed motion-LoRA file: target weight key (original layout) -> low-rank pair."""
    name: str
    pairs: dict = field(repr=False)

    @property
    def rank(self) -> int:
        return max(p.down.shape[0] for p in self.pairs.values())


def _weight_key(attn_key: str, proj: str) -> str:
    """The weight a projection's LoRA pair patches; to_out is a ModuleList holding one Linear (the original layout)."""
    return f"{attn_key}.{proj}.0.weight" if proj == "to_out" else f"{attn_key}.{proj}.weight"


def _target(attn_key: str, proj: str) -> str:
    for prefix in _STRIP:
        if attn_key.startswith(prefix):
            attn_key = attn_key[len(prefix):]
    return original_key(_weight_key(attn_key, proj))


def parse(sd: dict, name: str) -> MotionLoRA:
    """Group a LoRA file's tensors into pairs per target projection; reject files that are not motion LoRAs."""
    halves: dict[str, dict[str, torch.Tensor]] = {}
    alphas: dict[str, float] = {}
    for key, value in sd.items():
        if (m := _PAIR.match(key)) is not None:
            proj = m.group("proj_a") or m.group("proj_b")
            role = _ROLE[m.group("role_a") or m.group("role_b")]
            halves.setdefault(_target(m.group("attn"), proj), {})[role] = value
        elif (m := _ALPHA.match(key)) is not None:
            alphas[_target(m.group("attn"), m.group("proj"))] = float(value)
    if not halves:
        if any(".motion_modules." in k and ("temporal_transformer" in k or "transformer_blocks" in k) for k in sd):
            raise MotionModuleError(f"'{name}' is a full motion module, not a motion LoRA. Put it in "
                                    f"models/animatediff_models and load it with Load Motion Module.")
        if any("lora" in k.lower() for k in sd):
            raise MotionModuleError(f"'{name}' is an image LoRA (its LoRA weights patch the SD1.5 UNet, not the "
                                    f"motion module). Load it with ComfyUI's LoraLoaderModelOnly.")
        raise MotionModuleError(f"'{name}' holds no LoRA weights (first keys: {', '.join(list(sd)[:3]) or 'none'}). "
                                f"Choose a motion LoRA such as v2_lora_ZoomIn.ckpt.")
    spatial = [k for k in halves if ".motion_modules." not in k]
    if len(spatial) == len(halves):
        raise MotionModuleError(f"'{name}' is an image LoRA or spatial adapter (such as v3_sd15_adapter): it "
                                f"patches the SD1.5 UNet, not the motion module. Load it with ComfyUI's "
                                f"LoraLoaderModelOnly on the checkpoint's MODEL.")
    pairs = {}
    for key, half in halves.items():
        if key in spatial:
            continue
        if set(half) != {"up", "down"}:
            raise MotionModuleError(f"'{name}' is damaged: {key} has a LoRA {next(iter(half))} matrix without its "
                                    f"partner. Download the file again.")
        up, down = half["up"], half["down"]
        if up.ndim != 2 or down.ndim != 2 or up.shape[1] != down.shape[0]:
            raise MotionModuleError(f"'{name}': {key} has LoRA factors of shapes {tuple(up.shape)} and "
                                    f"{tuple(down.shape)}, which do not multiply; the file is not a motion LoRA.")
        rank = down.shape[0]
        # float32 once here: the side path runs in float32 on CPU anyway, and one copy beats a file copy + a cast.
        pairs[key] = LoRAPair(up=up.float(), down=down.float(), scale=alphas[key] / rank if key in alphas else 1.0)
    return MotionLoRA(name=name, pairs=pairs)


@dataclass(frozen=True)
class Match:
    matched: int
    skipped_mid: int

    def report(self, name: str) -> str:
        text = f"'{name}': {self.matched} LoRA projections matched"
        if self.skipped_mid:
            text += (f"; {self.skipped_mid} mid-block projections skipped (a v2 LoRA on a motion module without a "
                     f"mid block, e.g. v1/v3)")
        return text


def match(lora: MotionLoRA, model: MotionModel) -> Match:
    """Check every pair against the module's weights; raise if nothing (or something mis-shaped) matches."""
    weights = {k: v.shape for k, v in model.state_dict().items()}
    matched, skipped_mid = 0, 0
    for key, pair in lora.pairs.items():
        shape = weights.get(key)
        if shape is None:
            if key.startswith("mid_block.") and model.mid_block is None:
                skipped_mid += 1
            continue
        if (pair.up.shape[0], pair.down.shape[1]) != tuple(shape):
            raise MotionModuleError(f"'{lora.name}' does not fit this motion module: {key} is {tuple(shape)} but "
                                    f"the LoRA gives {(pair.up.shape[0], pair.down.shape[1])}. It was made for "
                                    f"another model (SDXL?).")
        matched += 1
    if matched == 0:
        raise MotionModuleError(f"'{lora.name}' matched none of the motion module's {len(weights)} weights "
                                f"(first LoRA key: {next(iter(lora.pairs))}); it was made for another model.")
    return Match(matched=matched, skipped_mid=skipped_mid)


class LowRank:
    """All LoRAs on one projection as one factor pair: path(x) = scale * up (down x).

    A single LoRA's factors are used as loaded (no copy); several are concatenated with their strengths folded in.
    Factors are cast to the activations' device/dtype once and the cast is shared by every rescaled copy.
    """

    def __init__(self, up: torch.Tensor, down: torch.Tensor, scale: float, placed: dict | None = None):
        self.up, self.down, self.scale = up, down, scale
        self._placed = {} if placed is None else placed

    def rescaled(self, factor: float) -> "LowRank":
        return LowRank(self.up, self.down, self.scale * factor, self._placed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        if key not in self._placed:
            self._placed[key] = (self.down.to(device=x.device, dtype=x.dtype),
                                 self.up.to(device=x.device, dtype=x.dtype))
        down, up = self._placed[key]
        out = F.linear(F.linear(x, down), up)
        return out.mul_(self.scale) if self.scale != 1.0 else out


def _fuse(parts: list) -> LowRank:
    if len(parts) == 1:
        pair, strength = parts[0]
        return LowRank(pair.up, pair.down, strength)
    up = torch.cat([pair.up * strength for pair, strength in parts], dim=1)
    down = torch.cat([pair.down for pair, _ in parts], dim=0)
    return LowRank(up, down, 1.0)


class LoRASet:
    """The active motion LoRAs of one run, looked up per temporal module as {(block, attention): {proj: LowRank}}."""

    def __init__(self, model: MotionModel, loras: list[tuple[MotionLoRA, float]]):
        by_key: dict[str, list] = {}
        for lora, strength in loras:
            if strength == 0:
                continue
            for key, pair in lora.pairs.items():
                by_key.setdefault(key, []).append((pair, strength * pair.scale))
        self._modules: dict[VanillaTemporalModule, dict] = {}
        for prefix, module in model.named_modules():
            if not isinstance(module, VanillaTemporalModule):
                continue
            per_module = {}
            for b, block in enumerate(module.temporal_transformer.transformer_blocks):
                for a in range(len(block.attention_blocks)):
                    attn = f"{prefix}.temporal_transformer.transformer_blocks.{b}.attention_blocks.{a}"
                    projs = {}
                    for proj in PROJECTIONS:
                        parts = by_key.get(_weight_key(attn, proj))
                        if parts:
                            projs[proj] = _fuse(parts)
                    if projs:
                        per_module[(b, a)] = projs
            if per_module:
                self._modules[module] = per_module

    def rescaled(self, factor: float) -> "LoRASet":
        """The same LoRAs at `factor` times their strengths, sharing every tensor (the sampler's strength)."""
        out = LoRASet.__new__(LoRASet)
        out._modules = {} if factor == 0 else {
            module: {ab: {p: path.rescaled(factor) for p, path in projs.items()} for ab, projs in per_module.items()}
            for module, per_module in self._modules.items()}
        return out

    def __bool__(self) -> bool:
        return bool(self._modules)

    def for_module(self, module: VanillaTemporalModule):
        return self._modules.get(module)
