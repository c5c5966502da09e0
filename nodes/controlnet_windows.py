"""ControlNets inside context windows: each window's ControlNet is guided by that window's hint frames.

Core's IndexListContextHandler slices the latent, timesteps and conds to each window, but hands every cond's
ControlNet over unchanged (its prepare_control_objects does nothing), and ControlNet.get_control then cuts the hint
to the first window-length frames (comfy.controlnet.broadcast_image_to): a 64-frame hint guides every window with
frames 0..15. The fix goes through the handler's own callbacks and a model wrapper, nothing of core's is replaced:
  * EVALUATE_CONTEXT_WINDOWS (core calls it for each window before slicing its conds and running the model): every
    ControlNet in the conds, and every ControlNet chained behind one (previous_controlnet), gets the hint frames of
    the frames this window feeds (samplers/control_hints.py);
  * EXECUTE_CLEANUP (end of each step) and an OUTER_SAMPLE wrapper (end of sampling, also after Cancel or an error):
    every full hint is put back, because the ControlNet objects live on in the cached CONDITIONING of the graph.
Reading and swapping a ControlNet's hint touches core's ControlBase attributes, which comfy_compat.py holds (its
canaries, and tests/host/test_controlnet_windows_host.py end to end, on each supported ComfyUI).
"""
from __future__ import annotations

import comfy.context_windows as cw
import comfy.patcher_extension
import torch

from ..samplers.control_hints import window_hint_indices
from . import comfy_compat as cc

KEY = "adlightning_controlnet_windows"


def controls_in(conds) -> list:
    """Every ControlNet the conds use, chained ones included, each once."""
    found = {}
    for cond in conds or []:
        for item in cond or []:
            control = item.get("control") if isinstance(item, dict) else None
            for chained in cc.chained_controlnets(control):
                found.setdefault(id(chained), chained)
    return list(found.values())


class WindowHints:
    """Swaps each ControlNet's hint for the current window's frames, and puts the full hints back."""

    def __init__(self):
        self.full = {}   # id(control) -> (control, the hint it was given)

    def on_window(self, handler, model, x_in, conds, timestep, model_options, window_idx, window, *unused):
        frames = x_in.size(handler.dim)
        fed = window.get_tensor(torch.arange(frames), dim=0).tolist()   # the frames this window runs, as core slices
        for control in controls_in(conds):
            if cc.controlnet_hint(control) is None:
                continue
            _, hint = self.full.setdefault(id(control), (control, cc.controlnet_hint(control)))
            if not isinstance(hint, torch.Tensor) or hint.shape[0] <= 1:
                continue   # one image guides every frame; core broadcasts it already
            cc.set_controlnet_hint(control, hint[window_hint_indices(fed, hint.shape[0])])

    def restore(self, *unused):
        for control, hint in self.full.values():
            cc.set_controlnet_hint(control, hint)
        self.full.clear()

    def outer_sample(self, executor, *args, **kwargs):
        try:
            return executor(*args, **kwargs)
        finally:
            self.restore()


def attach(model, handler: cw.IndexListContextHandler) -> WindowHints:
    """Hook per-window ControlNet hints into `handler` (already in model.model_options) and the clone `model`."""
    hints = WindowHints()
    comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.EVALUATE_CONTEXT_WINDOWS, KEY,
                                                  hints.on_window, handler.callbacks)
    comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.EXECUTE_CLEANUP, KEY,
                                                  hints.restore, handler.callbacks)
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, KEY, hints.outer_sample)
    return hints
