"""Motion scale (motion/scale.py): per-frame scales of the temporal module's residual, and the blend itself."""
from types import SimpleNamespace

import pytest
import torch

from adlightning.motion.module import VanillaTemporalModule
from adlightning.motion.scale import MotionScale, MotionScaleError, blend, window_scales


def test_default_everywhere_without_ranges():
    assert MotionScale.parse(0.5).per_frame(4) == [0.5] * 4
    assert MotionScale.parse(1.0).is_identity and MotionScale.parse(1.0, "0-3: 1").is_identity
    assert not MotionScale.parse(1.0, "2: 0.5").is_identity


def test_ranges_with_indexes_and_percentages_later_lines_win():
    scale = MotionScale.parse(1.0, "0-3: 0.5\n\n# calmer end\n50%-100%: 0\n2: 1.5")
    assert scale.per_frame(10) == [0.5, 0.5, 1.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    # a range past the last frame stops at the last frame
    assert MotionScale.parse(1.0, "6-40: 0.25").per_frame(8) == [1.0] * 6 + [0.25] * 2


@pytest.mark.parametrize("text, line, what", [
    ("0-3: 0.5\nfast", 2, "is not 'first-last: scale'"),
    ("\n0-3: -1", 2, "negative"),
    ("5-2: 0.5", 1, "ends before it starts"),
    ("1.5-3: 0.5", 1, "not a whole frame number"),
])
def test_bad_lines_are_named(text, line, what):
    with pytest.raises(MotionScaleError, match=rf"motion scale frames line {line}: .*{what}"):
        MotionScale.parse(1.0, text)


def test_each_context_window_takes_its_own_frames_scales():
    scale = MotionScale.parse(1.0, "8-11: 0")
    window = list(range(4, 12))
    assert window_scales(scale, 8, window, 16) == [1.0] * 4 + [0.0] * 4
    # a window list that does not match the batch (stale) is ignored: frames 0..7 of this batch
    assert window_scales(scale, 8, list(range(16)), 16) == [1.0] * 8


def test_blend_per_frame_in_numbers():
    x = torch.zeros(2 * 3, 1, 1, 1)              # 2 conds x 3 frames
    out = torch.arange(1.0, 7.0).view(6, 1, 1, 1)   # residual = out
    mixed = blend(x, out, [0.0, 0.5, 1.0])
    assert mixed.flatten().tolist() == [0.0, 1.0, 3.0, 0.0, 2.5, 6.0]
    assert blend(x, out, [1.0, 1.0, 1.0]) is out
    assert blend(x, out, [0.5] * 3).flatten().tolist() == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_frames_at_scale_one_keep_the_module_output_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    x, out = torch.randn(4, 3, 2, 2, generator=gen), torch.randn(4, 3, 2, 2, generator=gen)
    mixed = blend(x, out, [1.0, 0.3, 1.0, 0.0])
    assert torch.equal(mixed[0], out[0]) and torch.equal(mixed[2], out[2]) and torch.equal(mixed[3], x[3])


def test_temporal_module_leaves_its_input_alone():
    # blend() reads x after the module ran: a module that wrote into its input would make scale 0.5 wrong.
    torch.manual_seed(0)
    module = VanillaTemporalModule(64, 32)
    torch.nn.init.normal_(module.temporal_transformer.proj_out.weight, std=0.1)
    x = torch.randn(8, 64, 4, 4)
    before = x.clone()
    out = module(x, 8)
    assert torch.equal(x, before)
    assert not torch.equal(out, x)


def test_frames_are_independent_at_scale_zero():
    # The pack's patch skips the module at scale 0; through blend the same holds: no frame sees another.
    torch.manual_seed(0)
    module = VanillaTemporalModule(64, 32)
    torch.nn.init.normal_(module.temporal_transformer.proj_out.weight, std=0.1)
    x = torch.randn(8, 64, 4, 4)
    y = x.clone()
    y[3] += 1.0
    a, b = blend(x, module(x, 8), [0.0] * 8), blend(y, module(y, 8), [0.0] * 8)
    changed = [(a[i] != b[i]).any().item() for i in range(8)]
    assert changed == [False, False, False, True, False, False, False, False]
    c, d = blend(x, module(x, 8), [0.5] * 8), blend(y, module(y, 8), [0.5] * 8)
    assert sum((c[i] != d[i]).any().item() for i in range(8)) == 8   # at 0.5 the change spreads to every frame


def test_patch_uses_the_window_of_core_context_handler():
    window = SimpleNamespace(index_list=[12, 13, 14, 15], total_frames=16)
    scale = MotionScale.parse(0.0, "14-15: 1")
    assert window_scales(scale, 4, window.index_list, window.total_frames) == [0.0, 0.0, 1.0, 1.0]
