"""Canaries for what the pack relies on in core's context handler (comfy.context_windows), on whichever ComfyUI
COMFYUI_PATH holds; each test prints which behaviour it saw (pytest -rP shows it).

* ComfyUI 0.14.1 fails on a plain tensor inside a cond's dict (`cond_value(self.dim)`); 0.30 fixed it. The pack's
  RESIZE_COND_ITEM callback (samplers/cond_frames.py) takes those tensors first on both, so that branch never runs.
* ComfyUI 0.30 prepends the frame before each window (`causal_window_fix`, default on); 0.14.1 has no such thing.
  The pack sets the attribute to False on its handler (nodes/context_handler.py), which must give 0.14.1's windows.
Runs core's handler in this process (CPU), no model files.
"""
from types import SimpleNamespace

import pytest
import torch

from adlightning.samplers.cond_frames import resize_cond_item
from tests.host.conftest import import_comfy_in_process


@pytest.fixture(scope="module")
def cw():
    import_comfy_in_process()
    import comfy.context_windows
    return comfy.context_windows


def handler(cw):
    return cw.IndexListContextHandler(cw.get_matching_context_schedule("standard_static"),
                                      cw.get_matching_fuse_method("pyramid"), context_length=16, context_overlap=4)


def cond():
    return [{"model_conds": {"per_frame": torch.arange(32.0).view(32, 1), "other": torch.ones(2, 2)}}]


def test_core_handler_on_a_plain_tensor_in_a_cond_dict(cw):
    """0.14.1: the known TypeError. Fixed cores (0.30): core slices the tensor to the window itself. Anything else
    (another exception, a wrong slice) is a new core behaviour the callback was not written for."""
    window = cw.IndexListContextWindow(list(range(4, 20)), total_frames=32)
    h = handler(cw)
    h._model = None   # 0.30 asks the model (set by execute) after the callbacks; no model here
    try:
        out = h.get_resized_cond(cond(), torch.zeros(32, 4, 8, 8), window)
    except TypeError as e:
        assert "'Tensor' object is not callable" in str(e), e
        print("core behaviour: 0.14.1's bug (plain tensor in a cond dict -> TypeError); the pack's callback is needed")
        return
    assert out[0]["model_conds"]["per_frame"].view(-1).tolist() == [float(i) for i in range(4, 20)]
    print("core behaviour: fixed (core slices plain tensors in a cond dict); the pack's callback is kept for 0.14.1")


def test_callback_takes_the_tensor_first(cw):
    import comfy.patcher_extension
    h = handler(cw)
    comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.RESIZE_COND_ITEM, "adlightning_context",
                                                  resize_cond_item, h.callbacks)
    window = cw.IndexListContextWindow(list(range(4, 20)), total_frames=32)
    out = h.get_resized_cond(cond(), torch.zeros(32, 4, 8, 8), window)
    assert out[0]["model_conds"]["per_frame"].view(-1).tolist() == [float(i) for i in range(4, 20)]
    assert torch.equal(out[0]["model_conds"]["other"], torch.ones(2, 2))


def frames_seen(cw, h, frames: int = 24) -> list[list[int]]:
    """Frame ids of the windows core hands to a stub UNet for one step of a `frames`-frame latent."""
    seen = []

    def calc_cond_batch(model, sub_conds, sub_x, timestep, model_options):
        seen.append(sub_x[:, 0, 0, 0].round().long().tolist())
        return [sub_x.clone() for _ in sub_conds]

    x = torch.arange(float(frames)).view(frames, 1, 1, 1).expand(frames, 4, 2, 2).contiguous()
    model = SimpleNamespace(latent_format=SimpleNamespace(temporal_downscale_ratio=1),
                            resize_cond_for_context_window=lambda *args, **kwargs: None)
    sigmas = torch.tensor([14.6, 0.0])
    h.execute(calc_cond_batch, model, [[{"model_conds": {}}]], x, sigmas[0].expand(frames),
              {"transformer_options": {"sample_sigmas": sigmas}})
    return seen


def test_core_causal_window_fix_and_turning_it_off(cw):
    plain = [list(range(0, 16)), list(range(8, 24))]   # standard_static, 24 frames, length 16, overlap 4
    h = handler(cw)
    if not hasattr(h, "causal_window_fix"):
        assert frames_seen(cw, h) == plain
        print("core behaviour: no causal window fix (0.14.1): every window is exactly its frames")
    else:
        assert h.causal_window_fix is True, "core's default changed: check nodes/context_handler.py's comment"
        assert frames_seen(cw, h) == [plain[0], [7] + plain[1]]
        print("core behaviour: causal window fix on by default (0.30): windows after the first get the frame "
              "before them prepended; the pack turns it off")
    h = handler(cw)
    h.causal_window_fix = False   # what nodes/context_handler.py does: an attribute, set after construction
    assert frames_seen(cw, h) == plain
