"""RESIZE_COND_ITEM callback that keeps ComfyUI 0.14.1's dict-tensor branch from running (samplers/cond_frames.py)."""
from types import SimpleNamespace

import torch

from samplers.cond_frames import resize_cond_item

WINDOW = SimpleNamespace(index_list=[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
X = torch.zeros(32, 4, 8, 8)


def call(value):
    return resize_cond_item("key", value, WINDOW, X, None, {})


def test_per_frame_tensor_is_cut_to_the_window():
    value = torch.arange(32.0).view(32, 1).expand(32, 3)
    out = call(value)
    assert out.shape == (16, 3)
    assert out[:, 0].tolist() == [float(i) for i in range(4, 20)]


def test_other_tensors_come_back_unchanged_never_none():
    for value in (torch.ones(1, 77, 768), torch.tensor(2.0), torch.ones(31, 2)):
        assert call(value) is value


def test_non_tensors_are_left_to_comfyui():
    assert call(SimpleNamespace(cond=torch.ones(32))) is None
    assert call(16) is None
