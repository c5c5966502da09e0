"""AnimateDiff v1's clip-wide GroupNorm (motion/frame_norm.py) against an independent implementation: the original
UNet3D's ResnetBlock3D, written here on 5-D (batch, C, frames, H, W) tensors with torch's own GroupNorm over all
frames (use_inflated_groupnorm false) and its convolutions per frame (InflatedConv3d), on the same random weights as
an image-UNet ResBlock (frames folded into the batch, as ComfyUI runs it) whose GroupNorms get the pack's hooks."""
import pytest
import torch
import torch.nn.functional as F

from adlightning.motion.frame_norm import clip_wide, frames_in_batch, frames_side_by_side

GROUPS = 32


class ImageResBlock(torch.nn.Module):
    """ComfyUI's ResBlock shape: in_layers (norm, SiLU, conv), emb_layers, out_layers (norm, SiLU, conv), skip."""

    def __init__(self, cin, cout, emb):
        super().__init__()
        self.in_layers = torch.nn.Sequential(torch.nn.GroupNorm(GROUPS, cin, eps=1e-5), torch.nn.SiLU(),
                                             torch.nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(emb, cout))
        self.out_layers = torch.nn.Sequential(torch.nn.GroupNorm(GROUPS, cout, eps=1e-5), torch.nn.SiLU(),
                                              torch.nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = torch.nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):   # x: (conds*frames, C, H, W), emb: (conds*frames, E)
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


def resnet_block_3d(block: ImageResBlock, x5, emb):
    """The original's ResnetBlock3D (animatediff/models/resnet.py, v1 config), independently: norms on 5-D input."""
    def conv_per_frame(conv, t):
        b, c, f, h, w = t.shape
        out = conv(t.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))
        return out.reshape(b, f, -1, h, w).permute(0, 2, 1, 3, 4)

    def norm_5d(norm, t):
        return F.group_norm(t, norm.num_groups, norm.weight, norm.bias, norm.eps)

    h = conv_per_frame(block.in_layers[2], F.silu(norm_5d(block.in_layers[0], x5)))
    h = h + block.emb_layers(emb)[:, :, None, None, None]
    h = conv_per_frame(block.out_layers[2], F.silu(norm_5d(block.out_layers[0], h)))
    return conv_per_frame(block.skip, x5) + h


def seeded_block(cin=64, cout=96, emb=16):
    torch.manual_seed(0)
    block = ImageResBlock(cin, cout, emb)
    with torch.no_grad():
        for norm in (block.in_layers[0], block.out_layers[0]):
            norm.weight.copy_(1 + 0.2 * torch.randn_like(norm.weight))
            norm.bias.copy_(0.2 * torch.randn_like(norm.bias))
    return block


def clip(conds, frames, channels=64, size=(6, 5)):
    """Frames with their own brightness and contrast, so per-frame and clip-wide statistics differ."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(conds, frames, channels, *size, generator=gen)
    x = x * torch.linspace(0.5, 2.0, frames)[None, :, None, None, None] + torch.linspace(-1, 1, frames)[None, :, None,
                                                                                                        None, None]
    return x


@pytest.mark.parametrize("conds,frames", [(1, 16), (2, 8), (3, 5)])
def test_resblock_matches_the_original_v1_block(conds, frames):
    block = seeded_block()
    x = clip(conds, frames)
    emb = torch.randn(conds, 16, generator=torch.Generator().manual_seed(4))
    reference = resnet_block_3d(block, x.transpose(1, 2), emb).transpose(1, 2).reshape(conds * frames, 96, 6, 5)

    folded, emb_folded = x.reshape(conds * frames, 64, 6, 5), emb.repeat_interleave(frames, 0)
    with torch.no_grad(), clip_wide([block.in_layers[0], block.out_layers[0]], frames):
        ours = block(folded, emb_folded)
    torch.testing.assert_close(ours, reference.detach(), rtol=0, atol=2e-6)

    with torch.no_grad():   # hooks removed: back to the image UNet's per-frame norms, which the original v1 is not
        per_frame = block(folded, emb_folded)
    assert not block.in_layers[0]._forward_pre_hooks and not block.out_layers[0]._forward_hooks
    assert (per_frame - reference).abs().max() > 0.05


def test_norm_statistics_are_bit_identical_to_torch_5d_group_norm():
    x = clip(2, 8, channels=64)
    norm = seeded_block().in_layers[0]
    expected = F.group_norm(x.transpose(1, 2), GROUPS, norm.weight, norm.bias, norm.eps).transpose(1, 2)
    with torch.no_grad(), clip_wide([norm], 8):
        ours = norm(x.reshape(16, 64, 6, 5))
    assert torch.equal(ours, expected.reshape(16, 64, 6, 5).detach())


def test_each_cond_is_normalised_on_its_own():
    """cond and uncond share the UNet batch: scaling one cond's frames must not change the other's output."""
    norm = seeded_block().in_layers[0]
    x = clip(2, 4).reshape(8, 64, 6, 5)
    with torch.no_grad(), clip_wide([norm], 4):
        a = norm(x)
        b = norm(torch.cat([x[:4], 10 * x[4:] + 3]))
    assert torch.equal(a[:4], b[:4])


def test_layout_round_trip_and_order():
    x = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).reshape(6, 4, 2, 2)   # (conds*frames, C, H, W)
    side = frames_side_by_side(x, 3)
    assert side.shape == (2, 4, 6, 2)
    assert torch.equal(side[1, 2, 2:4], x[4, 2])   # cond 1, channel 2, frame 1 sits at rows 2..3
    assert torch.equal(frames_in_batch(side, 3), x)
