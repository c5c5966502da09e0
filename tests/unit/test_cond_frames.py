"""RESIZE_COND_ITEM callback that keeps ComfyUI 0.14.1's dict-tensor branch from running, and the per-frame
conditioning frame-count check (samplers/cond_frames.py)."""
from types import SimpleNamespace

import pytest
import torch

from adlightning.samplers.cond_frames import CondFramesError, check_frame_counts, resize_cond_item

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


def test_conditioning_with_the_wrong_frame_count_is_refused_naming_the_fix():
    per_frame = [[torch.zeros(32, 77, 8), {"pooled_output": torch.zeros(32, 8)}]]
    check_frame_counts(per_frame, 32, "positive")
    check_frame_counts([[torch.zeros(1, 77, 8), {"pooled_output": torch.zeros(1, 8)}]], 32, "negative")
    with pytest.raises(CondFramesError, match="positive conditioning has 32 .* latent has 48 frames; set the Prompt "
                                              "Travel node's frames to 48"):
        check_frame_counts(per_frame, 48, "positive")
    with pytest.raises(CondFramesError, match="pooled output"):
        check_frame_counts([[torch.zeros(1, 77, 8), {"pooled_output": torch.zeros(3, 8)}]], 4, "negative")
