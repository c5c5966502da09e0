"""The sliced decode: same frames as one whole decode, in slices of the asked size, a short last slice, video-VAE
output shapes, progress per slice, and a stop between slices."""
import pytest
import torch

from adlightning.frames.slices import in_slices


def fake_decode(calls):
    def decode(latent):
        calls.append(latent.shape[0])
        # per-frame map, like a VAE decoder: (n, 4, h, w) -> (n, 8h, 8w, 3)
        x = latent.mean(1, keepdim=True).repeat_interleave(8, 2).repeat_interleave(8, 3)
        return torch.cat([x, 2 * x, x.sin()], 1).movedim(1, -1)
    return decode


def test_slices_give_the_whole_decode():
    latent = torch.randn(10, 4, 3, 5)
    whole = fake_decode([])(latent)
    calls, progress = [], []
    out = in_slices(fake_decode(calls), latent, 4, on_slice=progress.append)
    assert calls == [4, 4, 2]
    assert progress == [4, 4, 2]
    assert out.shape == (10, 24, 40, 3)
    assert torch.equal(out, whole)


def test_video_vae_shape_is_flattened_to_frames():
    latent = torch.randn(6, 4, 2, 2)
    decode = fake_decode([])
    out = in_slices(lambda x: decode(x).unsqueeze(0), latent, 4)   # (1, n, H, W, 3)
    assert out.shape == (6, 16, 16, 3)
    assert torch.equal(out, decode(latent))


def test_one_slice_when_it_covers_the_clip():
    calls = []
    in_slices(fake_decode(calls), torch.randn(5, 4, 2, 2), 8)
    assert calls == [5]


def test_stop_between_slices():
    calls = []

    class Stop(Exception):
        pass

    def stop_after_two():
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        in_slices(fake_decode(calls), torch.randn(9, 4, 2, 2), 3, before_slice=stop_after_two)
    assert calls == [3, 3]


def test_zero_frames_per_batch_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        in_slices(fake_decode([]), torch.randn(2, 4, 2, 2), 0)
