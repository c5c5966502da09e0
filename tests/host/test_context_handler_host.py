"""The pack's context handler inside the ComfyUI tree under test, weight-free: every window core hands to the UNet
holds exactly the frames samplers/windows.py planned, and each window's per-frame cond holds the same frames.

Host tier only because the handler subclasses core's IndexListContextHandler (comfy.context_windows); the planning
itself is pure and unit-tested (tests/unit/test_windows*.py). No server, no model files: a stub calc_cond_batch
records what core passes it. This is the canary for core changes to how windows are cut, such as 0.30's
"causal window fix" (each window after the first gets the frame before it prepended), which the pack turns off.
"""
import importlib
from types import SimpleNamespace

import pytest
import torch

from tests.host.conftest import import_comfy_in_process


@pytest.fixture(scope="module")
def handler_module():
    import_comfy_in_process()
    return importlib.import_module("adlightning.nodes.context_handler")


def run_steps(handler_module, frames: int, steps: int = 4, **options):
    """For each step: the frame ids of every window the stub UNet saw, of its per-frame cond, and the planned ones."""
    win = handler_module.win
    opts = win.WindowOptions(**options)
    handler = handler_module.LightningContextHandler(opts)
    x = torch.arange(float(frames)).view(frames, 1, 1, 1).expand(frames, 4, 2, 2).contiguous()  # frame id = value
    conds = [[{"model_conds": {"per_frame": torch.arange(float(frames)).view(frames, 1)}}]]
    model = SimpleNamespace(latent_format=SimpleNamespace(temporal_downscale_ratio=1),
                            resize_cond_for_context_window=lambda *args, **kwargs: None)
    sigmas = torch.linspace(14.6, 0.0, steps + 1)
    out = []
    for step in range(steps):
        seen, seen_cond = [], []

        def calc_cond_batch(model, sub_conds, sub_x, timestep, model_options):
            seen.append(sub_x[:, 0, 0, 0].round().long().tolist())
            seen_cond.append(sub_conds[0][0]["model_conds"]["per_frame"].view(-1).round().long().tolist())
            return [sub_x.clone() for _ in sub_conds]

        blended = handler.execute(calc_cond_batch, model, conds, x, sigmas[step].expand(frames),
                                  {"transformer_options": {"sample_sigmas": sigmas}})
        assert torch.allclose(blended[0], x), "an identity UNet must blend back to the input"
        out.append((seen, seen_cond, win.windows(frames, opts, step)))
    return out


@pytest.mark.parametrize("frames,options", [
    (48, dict(length=16, overlap=4, schedule="static")),
    (64, dict()),                                               # the defaults (uniform: the layout moves per step)
    (48, dict(length=32, overlap=8, schedule="static")),        # t2v_long_64's 32: never 33 into a 32-frame table
    (40, dict(length=16, overlap=4, schedule="looped", fuse="flat")),
])
def test_every_window_holds_exactly_the_planned_frames(handler_module, frames, options):
    for step, (seen, seen_cond, planned) in enumerate(run_steps(handler_module, frames, **options)):
        assert seen == planned, f"step {step}: the UNet got other frames than planned"
        assert seen_cond == planned, f"step {step}: the per-frame cond does not match the window"
        assert max(map(len, seen)) <= options.get("length", 16)


def test_the_handler_turns_core_causal_window_fix_off(handler_module):
    handler = handler_module.LightningContextHandler(handler_module.win.WindowOptions())
    assert handler.causal_window_fix is False   # read by core >= 0.30, ignored by 0.14.1
