"""Read a motion-module file from disk and build the nn.Module, without ComfyUI."""
from __future__ import annotations

import hashlib
import os
import pickle
import re

import torch
from torch import nn

from .formats import LIGHTNING_SIZES, MotionInfo, normalize, with_sha256
from .module import MotionModel, MotionModuleError

_sha_cache: dict[tuple, str] = {}


def read_state_dict(path: str) -> dict:
    """Tensors of a .safetensors file, or of a pickle checkpoint through a weights-only load (no code runs)."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise MotionModuleError(f"'{path}' does not exist. Put motion modules in models/animatediff_models.")
    if path.lower().endswith((".safetensors", ".sft")):
        import safetensors.torch
        try:
            return safetensors.torch.load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own error type for truncated/corrupt headers
            raise MotionModuleError(f"'{name}' is not a readable .safetensors file ({e}). It is probably truncated "
                                    f"or not fully downloaded: download it again.") from e
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own text here advises re-running with weights_only=False ("will likely succeed"): that runs whatever
        # code the file holds, so it is not passed on; only the name of the refused object is kept.
        refused = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({refused.group(1)})" if refused else ""
        raise MotionModuleError(f"'{name}' holds Python objects besides tensors{what}, which this loader refuses to "
                                f"unpickle: unpickling can run code hidden in the file. Do not load this file with "
                                f"pickle enabled; use the .safetensors release of the motion module "
                                f"instead.") from None
    except Exception as e:
        first_line = next(iter(str(e).splitlines()), "")
        detail = "the file ends early" if isinstance(e, EOFError) else f"{type(e).__name__}: {first_line}"
        raise MotionModuleError(f"'{name}' could not be read as a weights-only checkpoint ({detail}). It may be "
                                f"truncated or not a checkpoint: download it again, preferably the .safetensors "
                                f"release of the file.") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise MotionModuleError(f"'{name}' does not hold a plain dict of tensors; it is not a motion module.")
    return data


def file_sha256(path: str) -> str:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def build(sd: dict, config, dtype: torch.dtype | None = None, ops=nn) -> MotionModel:
    """Module on the meta device, then the file's tensors assigned in (no random init of ~450M weights)."""
    with torch.device("meta"):
        model = MotionModel(config, ops=ops)
    model.load_state_dict(sd, strict=True, assign=True)
    if dtype is not None:
        model.to(dtype=dtype)
    # The position tables are tiny and read in float32 precision by the original; keep them float32.
    for module in model.modules():
        if hasattr(module, "pe"):
            module.pe = module.pe.float()
    return model.eval().requires_grad_(False)


def load_motion_module(path: str, dtype: torch.dtype | None = None, ops=nn) -> tuple[MotionModel, MotionInfo]:
    name = os.path.basename(path)
    sd = read_state_dict(path)
    sd, config, info = normalize(sd, name)
    if info.lightning_steps is None and os.path.getsize(path) in LIGHTNING_SIZES:
        info = with_sha256(info, file_sha256(path))
    return build(sd, config, dtype=dtype, ops=ops), info
