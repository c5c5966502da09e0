"""ComfyUI side of context windows, in two modes (samplers/windows.py MODES):

"motion module" (the default): no context handler; the UNet runs once per step on every frame and a ModuleWindows in
transformer_options tells each temporal layer (motion_patch._run_temporal) the step's windows and weights, which
motion/windows.py applies to the temporal attention. The step comes from the call's sigma (comfy_compat.sampling_step).
The UNet then sees every frame: when ComfyUI's memory estimate says that would not fit, the clip runs in the other
mode (fits_at_once).

"whole UNet": core's IndexListContextHandler (model_options["context_handler"], dim 0) run with the pack's window
lists and blend weights from samplers/windows.py.

Core does the per-window work: it slices the latent, timestep and conds to one window, calls the UNet on it (so the
motion module's frame count, read from the batch, is the window length), checks for Cancel before every window
and blends the results. The pack adds, through the handler's own schedule/fuse/callback hooks:
  * the window lists and weights (static/uniform/looped; pyramid/flat/overlap-linear);
  * a progress bar counted in windows, not steps (a 64-frame step is 5 windows and minutes on CPU);
  * a way around ComfyUI 0.14.1's get_resized_cond bug for plain tensors inside a cond's dicts
    (samplers/cond_frames.py): our RESIZE_COND_ITEM callback takes every such tensor first;
  * the same windows on every ComfyUI: newer cores (0.30) prepend the frame before each window ("causal window fix",
    on by default) so the UNet would see length+1 frames: ~5% more UNet frames, a different clip for the same seed
    than on 0.14.1, a 33-frame batch for a 32-frame position table at context length 32, and a motion module run
    past the 16 frames it was trained on. On dev/benchmarks/window_seams.py's exact prior (its best case) it lowers the
    default setting's seam ratio only from 1.17 to 1.15. So the handler turns it off (an attribute, which 0.14.1
    never reads).
Memory ("whole UNet"): core's prepare-sampling wrapper caps the memory estimate to one window, which is all the UNet
sees.
"""
from __future__ import annotations

import logging

import comfy.context_windows as cw
import comfy.patcher_extension
import comfy.utils
import latent_preview
import torch

from ..motion.windows import FrameWindows
from ..samplers import windows as win
from ..samplers.cond_frames import resize_cond_item
from ..samplers.free_noise import free_noise
from . import comfy_compat as cc
from . import controlnet_windows
from .motion_patch import WINDOWS_KEY

log = logging.getLogger("AnimateDiff-Lightning")
KEY = "adlightning_context"


class LightningContextHandler(cw.IndexListContextHandler):
    """Core's index-list handler on dim 0 (frames), with the pack's schedule and weights plugged into its hooks."""

    def __init__(self, options: win.WindowOptions):
        super().__init__(context_schedule=cw.ContextSchedule(f"adlightning_{options.schedule}", self._layout),
                         fuse_method=cw.ContextFuseMethod(f"adlightning_{options.fuse}", self._weights),
                         context_length=options.length, context_overlap=options.overlap, dim=0)
        self.options = options
        # Core 0.30's causal window fix off, set after construction (0.14.1's constructor has no such argument):
        # every window is exactly the frames samplers/windows.py planned (canary: tests/host/test_context_handler_host.py).
        cc.disable_causal_window_fix(self)
        self.on_window = None   # set by window_progress
        self._weights_of = {}
        comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.RESIZE_COND_ITEM, KEY,
                                                      resize_cond_item, self.callbacks)
        comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.COMBINE_CONTEXT_WINDOW_RESULTS, KEY,
                                                      self._window_done, self.callbacks)

    def _layout(self, num_frames, handler, model_options):
        layout = win.windows(num_frames, self.options, cc.handler_step(self))
        self._weights_of = {tuple(w): weights.tolist()
                            for w, weights in zip(layout, win.fuse_weights(self.options.fuse, layout))}
        return layout

    def _weights(self, length, idxs=None, **unused):
        return self._weights_of[tuple(idxs)]

    def _window_done(self, *unused):
        if self.on_window is not None:
            self.on_window()


class ModuleWindows:
    """Context windows inside the motion module (mode "motion module"): sits in transformer_options[WINDOWS_KEY],
    where each temporal layer (motion_patch._run_temporal) asks it for this call's windows. The layout and weights
    are samplers/windows.py's, for the step this model call belongs to (uniform shifts them every step)."""

    def __init__(self, options: win.WindowOptions):
        self.options = options
        self._cache = {}
        self._call = None   # (this model call's sigma tensor, frames, its FrameWindows)

    def frame_windows(self, frames: int, transformer_options: dict) -> FrameWindows | None:
        if frames <= self.options.length:
            return None
        # Every temporal layer of one model call asks (21 per UNet pass) and they all get the same sigma tensor:
        # find the step once per call (it compares sigmas on the CPU, a device sync on a GPU).
        sigma = transformer_options.get("sigmas")
        if self._call is not None and self._call[0] is sigma and self._call[1] == frames:
            return self._call[2]
        step = cc.sampling_step(transformer_options) if self.options.schedule == "uniform" else 0
        key = (frames, step)
        if key not in self._cache:
            layout = win.windows(frames, self.options, step)
            self._cache[key] = FrameWindows.of(layout, win.fuse_weights(self.options.fuse, layout), frames)
        self._call = (sigma, frames, self._cache[key])
        return self._cache[key]

    # The transformer_options dict is copied (shallowly) for every model call; these keep that copy cheap and keep
    # ComfyUI's deepcopy of model_options (hooks, some custom nodes) from copying the cache.
    def __deepcopy__(self, memo):
        return self


def fits_at_once(model, frames: int, latent_shape, cfg: float) -> bool:
    """Whether one UNet call on every frame (cond and uncond) fits in free memory by ComfyUI's own estimate, with the
    1.5x margin its calc_cond_batch uses before it puts conds into one batch."""
    conds = 1 if cfg == 1.0 else 2
    shape = [frames * conds, *latent_shape[1:]]
    return cc.unet_memory_required(model, shape) * 1.5 <= cc.free_memory(model)


def apply(model, options: win.WindowOptions, noise: torch.Tensor, seed: int, steps: int, cfg: float = 1.0):
    """(model clone that samples in windows, the initial noise to use, the sampler callback)."""
    if "context_handler" in model.model_options:
        raise win.ContextWindowError(
            "this MODEL already has context windows (e.g. from core's Context Windows node) and the sampler got "
            "context options too; use one of them (the sampler's context_options input is made for Lightning)")
    frames = noise.shape[0]
    if options.noise == "freenoise":
        noise = free_noise(noise, options.length, options.overlap, seed)
    if options.mode == win.MOTION_MODULE:
        if fits_at_once(model, frames, noise.shape, cfg):
            model = model.clone()
            model.model_options["transformer_options"][WINDOWS_KEY] = ModuleWindows(options)
            if frames > options.length:
                log.info("context windows inside the motion module:\n%s", win.picture(frames, options, steps))
            return model, noise, latent_preview.prepare_callback(model, steps)
        log.warning("%d frames at once would not fit in free memory by ComfyUI's estimate; running the whole UNet "
                    "in context windows instead (mode 'whole UNet')", frames)
    model = model.clone()
    handler = LightningContextHandler(options)
    model.model_options["context_handler"] = handler
    cw.create_prepare_sampling_wrapper(model)   # memory estimate for one window, not the whole clip
    controlnet_windows.attach(model, handler)   # each window's ControlNet sees that window's hint frames
    if frames > options.length:
        log.info("context windows:\n%s", win.picture(frames, options, steps))
    return model, noise, window_progress(model, handler, win.window_evaluations(frames, options, steps))


def window_progress(model, handler: LightningContextHandler, per_step: list[int]):
    """Progress bar in windows: +1 after each window; at each step's end it is set to the windows done so far (also
    right for clips short enough that the handler never splits them) and the step's preview is sent."""
    total = sum(per_step)
    done_by_step = [sum(per_step[:i + 1]) for i in range(len(per_step))]
    pbar = comfy.utils.ProgressBar(total)
    previewer = cc.previewer(model)
    handler.on_window = lambda: pbar.update(1)

    def callback(step, x0, x, total_steps):
        pbar.update_absolute(done_by_step[min(step, len(done_by_step) - 1)], total, cc.preview_image(previewer, x0))
    return callback
