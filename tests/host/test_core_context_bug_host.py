"""ComfyUI 0.14.1's context handler fails on a plain tensor inside a cond's dict; the pack's RESIZE_COND_ITEM
callback (samplers/cond_frames.py) keeps that branch from running. Runs core's handler in this process (CPU)."""
import sys

import pytest
import torch

from samplers.cond_frames import resize_cond_item
from tests.host.conftest import comfy_path


@pytest.fixture(scope="module")
def cw():
    path = comfy_path()
    if path not in sys.path:
        sys.path.append(path)   # after the repo, whose nodes/ package shares a name with ComfyUI's nodes.py
    import comfy.cli_args
    comfy.cli_args.args.cpu = True   # model_management probes for a GPU when first imported
    import comfy.context_windows
    return comfy.context_windows


def handler(cw):
    return cw.IndexListContextHandler(cw.get_matching_context_schedule("standard_static"),
                                      cw.get_matching_fuse_method("pyramid"), context_length=16, context_overlap=4)


def cond():
    return [{"model_conds": {"per_frame": torch.arange(32.0).view(32, 1), "other": torch.ones(2, 2)}}]


def test_core_handler_fails_on_a_plain_tensor_in_a_cond_dict(cw):
    # If this stops failing, ComfyUI fixed `cond_value(self.dim)` and the callback is no longer needed.
    window = cw.IndexListContextWindow(list(range(4, 20)), total_frames=32)
    with pytest.raises(TypeError, match="'Tensor' object is not callable"):
        handler(cw).get_resized_cond(cond(), torch.zeros(32, 4, 8, 8), window)


def test_callback_takes_the_tensor_first(cw):
    import comfy.patcher_extension
    h = handler(cw)
    comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.RESIZE_COND_ITEM, "adlightning_context",
                                                  resize_cond_item, h.callbacks)
    window = cw.IndexListContextWindow(list(range(4, 20)), total_frames=32)
    out = h.get_resized_cond(cond(), torch.zeros(32, 4, 8, 8), window)
    assert out[0]["model_conds"]["per_frame"].view(-1).tolist() == [float(i) for i in range(4, 20)]
    assert torch.equal(out[0]["model_conds"]["other"], torch.ones(2, 2))
