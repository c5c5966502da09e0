"""Video-to-video frame math (frames/select.py, frames/fit.py, frames/slices.py): which frames and audio are
kept, SD1.5 sizes, and the sliced encode equal to a whole-clip encode."""
import pytest
import torch

from adlightning.frames.slices import in_slices
from adlightning.frames.fit import FitError, fit_frames, fit_size
from adlightning.frames.select import FrameSelection, SelectError, trim_audio


@pytest.mark.parametrize("sel,total,expected", [
    (FrameSelection(), 5, [0, 1, 2, 3, 4]),
    (FrameSelection(start=2), 5, [2, 3, 4]),
    (FrameSelection(every_nth=2), 7, [0, 2, 4, 6]),
    (FrameSelection(start=1, every_nth=3, max_frames=2), 20, [1, 4]),
    (FrameSelection(max_frames=3), 2, [0, 1]),
    (FrameSelection(start=9), 5, []),
])
def test_selection_indices(sel, total, expected):
    assert sel.indices(total) == expected
    kept = [i for i in range(total) if sel.keeps(i)]
    assert kept[:len(expected)] == expected


def test_selection_keeps_the_duration():
    sel = FrameSelection(start=6, every_nth=2)
    assert sel.fps(24.0) == 12.0
    assert sel.span_seconds(10, 24.0) == (0.25, 20 / 24)


@pytest.mark.parametrize("kwargs,match", [({"start": -1}, "start_frame"), ({"every_nth": 0}, "every_nth"),
                                          ({"max_frames": -2}, "max_frames")])
def test_selection_rejects_bad_values(kwargs, match):
    with pytest.raises(SelectError, match=match):
        FrameSelection(**kwargs)


def test_trim_audio_cuts_and_pads():
    wave = torch.arange(100.0).reshape(1, 1, 100)   # 10 Hz, 10 s
    assert trim_audio(wave, 10, 2.0, 3.0)[0, 0].tolist() == list(range(20, 50))
    tail = trim_audio(wave, 10, 9.0, 2.0)[0, 0]
    assert tail.tolist() == list(range(90, 100)) + [0.0] * 10   # frames outlast the audio: silence, same length


@pytest.mark.parametrize("size,max_side,expected", [
    ((1920, 1080), 512, (512, 288)), ((1080, 1920), 512, (288, 512)), ((640, 480), 512, (512, 384)),
    ((512, 768), 768, (512, 768)), ((768, 512), 768, (768, 512)), ((384, 768), 768, (384, 768)),
    ((64, 64), 512, (512, 512)), ((1001, 333), 512, (512, 168)),
])
def test_fit_size(size, max_side, expected):
    out = fit_size(*size, max_side)
    assert out == expected and out[0] % 8 == 0 and out[1] % 8 == 0


def test_fit_size_rejects_too_small_and_bad_max_side():
    with pytest.raises(FitError, match=r"1000x100 video .* is 512x48: a side below 64 px .* raise max_side to at "
                                       r"least 688"):
        fit_size(1000, 100, 512)
    assert fit_size(1000, 100, 688) == (688, 72)   # the suggested max_side works
    with pytest.raises(FitError, match="multiple of 8"):
        fit_size(100, 100, 100)
    with pytest.raises(FitError, match="1x1"):
        fit_size(0, 10, 512)


def test_fit_frames_crop_keeps_the_centre_and_aspect():
    # a 4:3 frame with a vertical white bar exactly in its centre, cropped to 1:1: the bar stays centred.
    frame = torch.zeros(1, 60, 80, 3)
    frame[:, :, 38:42] = 1.0
    out = fit_frames(frame, 32, 32, "crop")
    assert out.shape == (1, 32, 32, 3)
    column = out[0, 16, :, 0]
    assert column.argmax().item() in (15, 16) and column[:8].max() == 0 and column[-8:].max() == 0
    stretched = fit_frames(frame, 32, 32, "stretch")
    assert stretched.shape == (1, 32, 32, 3) and 0 <= stretched.min() and stretched.max() <= 1


def test_fit_frames_identity_when_already_fitted():
    frame = torch.rand(2, 16, 24, 3)
    assert fit_frames(frame, 24, 16) is frame
    with pytest.raises(FitError, match="unknown fit"):
        fit_frames(frame, 8, 8, "zoom")


@pytest.mark.parametrize("per_batch", [1, 3, 8, 100])
def test_encode_in_slices_equals_whole_encode(per_batch):
    images = torch.rand(10, 16, 16, 3)
    encode = lambda x: x.movedim(-1, 1)[:, :, ::8, ::8] * 2 + torch.arange(x.shape[0])[:, None, None, None] * 0
    calls, progress = [], []
    out = in_slices(lambda x: calls.append(x.shape[0]) or encode(x), images, per_batch, on_slice=progress.append)
    assert torch.equal(out, encode(images))
    assert max(calls) == min(per_batch, 10) and sum(progress) == 10


def test_encode_in_slices_rejects_bad_input():
    with pytest.raises(ValueError, match="frames_per_batch"):
        in_slices(lambda x: x, torch.rand(2, 8, 8, 3), 0)
    with pytest.raises(ValueError, match="no frames"):
        in_slices(lambda x: x, torch.rand(0, 8, 8, 3), 4)
