"""Cut per-frame tensors held in a cond's dicts down to one context window.

ComfyUI 0.14.1's IndexListContextHandler.get_resized_cond has a branch for plain tensors inside a cond's dicts
(e.g. model_conds) that calls `cond_value(self.dim)` instead of `cond_value.size(self.dim)`, so any such tensor ends
the run with "'Tensor' object is not callable". The handler asks RESIZE_COND_ITEM callbacks first and skips its own
branches for any item a callback answers; resize_cond_item answers for every plain tensor, so that branch never runs.
Per-frame CONDITIONING (Prompt Travel: one text embedding per frame) needs nothing from us inside the windows: core
cuts a CONDCrossAttn whose rows equal the latent's frames to the window's frames (0.14.1 and 0.30 alike; the host test
tests/host/test_prompt_travel_host.py records what reaches the UNet). What core does not do is notice a row count
that differs from the frame count: it repeats or cuts the rows to the batch, so every window would get the first
frames' prompts. check_frame_counts refuses that before sampling.
Pure torch (the window only needs .index_list), so it is tested without ComfyUI.
"""
from __future__ import annotations

import torch


def resize_cond_item(cond_key, cond_value, window, x_in, device, new_cond_item):
    """RESIZE_COND_ITEM callback: a plain tensor with one entry per frame (dim 0) -> this window's frames, any other
    plain tensor -> unchanged; not a plain tensor -> None (core's own handling)."""
    if not isinstance(cond_value, torch.Tensor):
        return None
    if cond_value.ndim > 0 and cond_value.shape[0] == x_in.shape[0]:
        return cond_value[window.index_list].to(device)
    return cond_value


class CondFramesError(ValueError):
    """Per-frame conditioning whose frame count differs from the latent's; the message says how to fix it."""

    __module__ = "builtins"   # shown as its own name, not the pack's folder path (see motion/module.py)


def check_frame_counts(conditioning, frames: int, name: str) -> None:
    """Every tensor of a CONDITIONING (the text embedding, pooled output) must hold one entry for the whole clip or
    one per frame. Core would quietly repeat or cut any other count (and, with context windows, give every window the
    first frames' prompts), so a Prompt Travel frame count that differs from the latent's is refused here."""
    for embedding, extra in conditioning or []:
        for what, value in (("text embedding", embedding), ("pooled output", extra.get("pooled_output"))):
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] not in (1, frames):
                raise CondFramesError(
                    f"{name} conditioning has {value.shape[0]} per-frame {what}s but the latent has {frames} frames; "
                    f"set the Prompt Travel node's frames to {frames} or connect the latent to its latent input")
