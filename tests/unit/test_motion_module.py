"""The temporal transformer against an independent implementation (diffusers) on the same random weights.

diffusers' AnimateDiffTransformer3D GroupNorms across all frames; the original AnimateDiff (and this pack) normalise
each frame on its own. The parity test swaps diffusers' norm for a per-frame one with the same affine weights and
then expects agreement to float precision; with diffusers' own norm the two must disagree.
"""
import pytest
import torch

from dev.harness.motion_files import to_diffusers_keys
from adlightning.motion.formats import normalize
from adlightning.motion.loader import build
from adlightning.motion.module import MotionConfig, MotionModel, MotionModuleError

diffusers = pytest.importorskip("diffusers")


class PerFrameGroupNorm(torch.nn.Module):
    """Wraps diffusers' GroupNorm: its input is (B, C, F, H, W); normalise each frame like the original code."""

    def __init__(self, norm: torch.nn.GroupNorm):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        b, c, f, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        out = self.norm(frames)
        return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


@pytest.fixture(scope="module")
def adapter_and_ours():
    """A full-size diffusers MotionAdapter with seeded random weights, and our model built from its state dict."""
    torch.manual_seed(0)
    with torch.device("meta"):
        adapter = diffusers.MotionAdapter()
    sd = {}
    gen = torch.Generator().manual_seed(1)
    for k, v in adapter.state_dict().items():
        if k.endswith("pos_embed.pe"):
            sd[k] = torch.empty(v.shape)  # filled by diffusers' own buffer below
        elif k.endswith(".weight") and ".norm" in k:
            sd[k] = 1.0 + 0.1 * torch.randn(v.shape, generator=gen)
        else:
            sd[k] = 0.05 * torch.randn(v.shape, generator=gen)
    adapter = diffusers.MotionAdapter()
    for k, v in adapter.state_dict().items():
        if k.endswith("pos_embed.pe"):
            sd[k] = v.clone()  # diffusers' own sinusoid: our loader must map it onto both attention blocks
    adapter.load_state_dict(sd)
    adapter.eval()
    ours_sd, config, info = normalize(sd, "animatediff_lightning_4step_diffusers.safetensors")
    assert info.layout == "diffusers" and info.lightning_steps == 4 and info.tensors == 567
    return adapter, build(ours_sd, config)


@pytest.mark.parametrize("where,channels", [("down_blocks.0.motion_modules.1", 320),
                                             ("mid_block.motion_modules.0", 1280),
                                             ("up_blocks.2.motion_modules.2", 640)])
def test_parity_with_diffusers_per_frame_norm(adapter_and_ours, where, channels):
    adapter, ours = adapter_and_ours
    theirs = adapter.get_submodule(where)
    mine = ours.get_submodule(where)
    frames, batch = 16, 2
    x = torch.randn(batch * frames, channels, 6, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        original_norm = theirs.norm
        try:
            theirs.norm = PerFrameGroupNorm(original_norm)
            expected = theirs(x, num_frames=frames)
        finally:
            theirs.norm = original_norm
        cross_frame = theirs(x, num_frames=frames)
        got = mine(x, frames)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # the GroupNorm choice is a real difference, not a no-op
    assert (got - cross_frame).abs().mean().item() > 1e-3
    # and the module does something: it is not the identity
    assert (got - x).abs().mean().item() > 1e-2


def test_every_module_maps_back_to_the_diffusers_key(adapter_and_ours):
    adapter, ours = adapter_and_ours
    mapped = to_diffusers_keys(ours.state_dict())
    theirs = adapter.state_dict()
    assert set(mapped) == set(theirs)
    assert all(torch.equal(mapped[k], theirs[k]) for k in theirs)


def small_module(frames_pe=32, seed=0):
    torch.manual_seed(seed)
    model = MotionModel(MotionConfig(pe_length=frames_pe, down_channels=(64, 64, 64, 64), mid_channels=64))
    return model.down_blocks[0].motion_modules[0].eval()


def _randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return module


def test_frames_are_coupled_and_batches_are_not():
    m = _randomise(small_module())
    x = torch.randn(2 * 8, 64, 4, 4)
    y = x.clone()
    y[0] += torch.randn(64, 4, 4)   # perturb frame 0 of clip 0 (a constant shift would be normed away)
    with torch.no_grad():
        a, b = m(x, 8), m(y, 8)
    changed = (a - b).abs().flatten(1).amax(1)
    assert (changed[1:8] > 1e-4).all()          # other frames of the same clip react
    assert (changed[8:] == 0).all()             # the other clip in the batch is untouched
    # and per-frame GroupNorm means a clip's frames are not normalised together
    z = x.clone()
    z[1:8] *= 10
    with torch.no_grad():
        c = m(z, 8)
    assert not torch.allclose(c[0], a[0])


def test_frame_limits_are_clear_errors():
    m = small_module(frames_pe=24)
    with pytest.raises(MotionModuleError, match=r"25 frames reach past this motion module's position table "
                                                r"\(24 frames\)\. Use context windows"):
        m(torch.zeros(25, 64, 2, 2), 25)
    with pytest.raises(MotionModuleError, match="not a whole number of 16-frame clips"):
        m(torch.zeros(20, 64, 2, 2), 16)
    with pytest.raises(MotionModuleError, match="without a frame count"):
        m(torch.zeros(16, 64, 2, 2))


def test_half_precision_weights_accept_float32_activations():
    m = _randomise(small_module())
    x = torch.randn(8, 64, 4, 4)
    with torch.no_grad():
        ref = m(x, 8)
        m.half()
        out = m(x, 8)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)


def test_position_table_is_read_per_frame_index():
    # Same tokens in every frame: only the position table makes frames differ, so frame outputs must differ.
    m = _randomise(small_module())
    x = torch.randn(1, 64, 3, 3).repeat(8, 1, 1, 1)
    with torch.no_grad():
        out = m(x, 8)
    assert (out[1:] - out[:1]).abs().amax().item() > 1e-3
