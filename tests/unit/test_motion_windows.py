"""Context windows inside the motion module (motion/windows.py, the sampler's "motion module" mode).

  * One window over the whole clip is the plain forward, bit for bit (so a clip no longer than the context length
    samples exactly as without windows, and as the whole-UNet mode, which does not split such a clip either).
  * With several windows, every temporal layer's fused output equals a reference written here from the layer's
    weights, window by window: the per-frame layers once per frame, each attention per window with the position
    table restarting at 0, and a frame's attention output the weighted mean over the windows that hold it.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adlightning.motion.module import MotionConfig, MotionModel
from adlightning.motion.windows import FrameWindows, transformer_windows
from adlightning.samplers.windows import FUSE_METHODS, SCHEDULES, WindowOptions, fuse_weights, windows
from tests.unit.test_temporal_forward import temporal

DIM = 64


def motion_model(seed=0):
    return temporal(seed, dim=DIM)   # random weights, proj_out included, so the output depends on the attention


def layers(model):
    return [module for _, _, module in model.placements()]


def frame_windows(frames, options, step=0):
    layout = windows(frames, options, step)
    return FrameWindows.of(layout, fuse_weights(options.fuse, layout), frames)


def clip(frames, batch=2, seed=1):
    return torch.randn(batch * frames, DIM, 3, 2, generator=torch.Generator().manual_seed(seed))


# --- reference, written from the weights -------------------------------------------------------------------------

def table(length, dim):
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe


def linear(layer, x):
    w = layer.weight.double()
    return x @ w.T + (layer.bias.double() if layer.bias is not None else 0)


def ref_attention(attn, x):
    """x: (tokens, L, C) float64, one window."""
    x = x + table(x.shape[1], x.shape[2])
    q, k, v = linear(attn.to_q, x), linear(attn.to_k, x), linear(attn.to_v, x)
    n, f, c = q.shape
    h = attn.heads
    q, k, v = (t.view(n, f, h, c // h).transpose(1, 2) for t in (q, k, v))
    out = ((q @ k.transpose(-1, -2)) / math.sqrt(c // h)).softmax(-1) @ v
    return linear(attn.to_out[0], out.transpose(1, 2).reshape(n, f, c))


def ref_layer_norm(norm, x):
    return F.layer_norm(x, (x.shape[-1],), norm.weight.double(), norm.bias.double(), norm.eps)


def reference(layer, x, frames, layout, weights):
    """Attention-granularity windows over (B*F, C, H, W) x, from layer's weights, in float64."""
    tt = layer.temporal_transformer
    bf, c, h, w = x.shape
    b = bf // frames
    xd = x.double()
    normed = F.group_norm(xd, tt.norm.num_groups, tt.norm.weight.double(), tt.norm.bias.double(), tt.norm.eps)
    hidden = linear(tt.proj_in, normed.view(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(-1, frames, c))
    block = tt.transformer_blocks[0]
    for attn, norm in zip(block.attention_blocks, block.norms):
        normed = ref_layer_norm(norm, hidden)
        total = torch.zeros_like(hidden)
        count = torch.zeros(frames, dtype=torch.float64)
        for window, weight in zip(layout, weights):
            out = ref_attention(attn, normed[:, window])
            for j, frame in enumerate(window):
                total[:, frame] += float(weight[j]) * out[:, j]
                count[frame] += float(weight[j])
        hidden = hidden + total / count.view(1, -1, 1)
    ff_in = ref_layer_norm(block.ff_norm, hidden)
    hid, gate = linear(block.ff.net[0].proj, ff_in).chunk(2, dim=-1)
    hidden = hidden + linear(block.ff.net[2], F.gelu(gate) * hid)
    hidden = linear(tt.proj_out, hidden)
    return xd + hidden.view(b, h, w, frames, c).permute(0, 3, 4, 1, 2).reshape(bf, c, h, w)


# --- one window ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frames", [1, 9, 16])
def test_one_window_over_the_clip_is_the_plain_forward_bit_for_bit(frames):
    model = motion_model()
    options = WindowOptions()
    fw = frame_windows(frames, options)
    assert fw.single and len(fw.layout) == 1
    x = clip(frames)
    with torch.no_grad():
        for layer in layers(model):
            for granularity in ("attention", "transformer"):
                assert torch.equal(layer(x, frames, None, fw, granularity), layer(x, frames))


# --- several windows ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("fuse", FUSE_METHODS)
def test_every_layer_fused_output_equals_the_window_by_window_reference(schedule, fuse):
    frames = 40
    options = WindowOptions(length=16, overlap=4, schedule=schedule, fuse=fuse)
    model = motion_model(seed=2)
    x = clip(frames, batch=1, seed=3)
    for step in range(4 if schedule == "uniform" else 1):
        layout = windows(frames, options, step)
        assert len(layout) > 2
        fw = frame_windows(frames, options, step)
        weights = fuse_weights(fuse, layout)
        with torch.no_grad():
            for layer in layers(model):
                got = layer(x, frames, None, fw)
                want = reference(layer, x, frames, layout, weights)
                torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_transformer_granularity_is_the_weighted_mean_of_per_window_modules():
    frames = 30
    options = WindowOptions(length=12, overlap=4, schedule="static", fuse="pyramid")
    layout = windows(frames, options)
    weights = fuse_weights(options.fuse, layout)
    layer = layers(motion_model(seed=4))[3]
    x = clip(frames, seed=5)
    b = x.shape[0] // frames
    with torch.no_grad():
        got = layer(x, frames, None, frame_windows(frames, options), "transformer")
        per_frame = x.view(b, frames, *x.shape[1:])
        total = torch.zeros_like(per_frame, dtype=torch.float64)
        count = torch.zeros(frames, dtype=torch.float64)
        for window, weight in zip(layout, weights):
            out = layer(per_frame[:, window].reshape(-1, *x.shape[1:]), len(window)).view(b, len(window),
                                                                                          *x.shape[1:])
            for j, frame in enumerate(window):
                total[:, frame] += float(weight[j]) * out[:, j].double()
                count[frame] += float(weight[j])
    torch.testing.assert_close(got.double(), (total / count.view(1, -1, 1, 1, 1)).view(x.shape),
                               rtol=1e-5, atol=1e-5)


def test_windows_let_a_clip_run_past_the_position_table():
    frames = 48   # longer than the 32-frame table: fine in 16-frame windows
    layer = layers(motion_model())[0]
    x = clip(frames, batch=1)
    with torch.no_grad():
        out = layer(x, frames, None, frame_windows(frames, WindowOptions()))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_fp16_module_on_fp32_activations_casts_around_the_windows():
    frames = 24
    model = motion_model().half()
    layer = layers(model)[0]
    x = clip(frames, batch=1)
    with torch.no_grad():
        out = layer(x, frames, None, frame_windows(frames, WindowOptions()))
    assert out.dtype == torch.float32


def test_window_granularity_is_checked():
    layer = layers(motion_model())[0]
    frames = 24
    with pytest.raises(ValueError, match="granularity"):
        transformer_windows(layer.temporal_transformer, clip(frames), frames, frame_windows(frames, WindowOptions()),
                            None, "frames")


def test_motion_lora_paths_ride_along_in_the_windows():
    """With Motion LoRA paths on every projection, each attention's blended output equals running the module's own
    attention (LoRA included) on each window's frames and taking the weighted mean."""
    from adlightning.motion.lora import LowRank
    from adlightning.motion.windows import _attention_windows
    frames = 30
    options = WindowOptions(length=12, overlap=4, schedule="looped", fuse="overlap-linear")
    layout = windows(frames, options)
    weights = fuse_weights(options.fuse, layout)
    attention = layers(motion_model(seed=6))[0].temporal_transformer.transformer_blocks[0].attention_blocks[0]
    gen = torch.Generator().manual_seed(7)
    lora = {name: LowRank(0.1 * torch.randn(DIM, 4, generator=gen), 0.1 * torch.randn(4, DIM, generator=gen), 0.8)
            for name in ("to_q", "to_k", "to_v", "to_out")}
    normed = torch.randn(6, frames, DIM, generator=gen)
    with torch.no_grad():
        got = _attention_windows(attention, normed, frame_windows(frames, options), lora)
        total = torch.zeros(6, frames, DIM, dtype=torch.float64)
        count = torch.zeros(frames, dtype=torch.float64)
        for window, weight in zip(layout, weights):
            out = attention(normed[:, window].clone(), lora).double()
            for j, frame in enumerate(window):
                total[:, frame] += float(weight[j]) * out[:, j]
                count[frame] += float(weight[j])
    torch.testing.assert_close(got.double(), total / count.view(1, -1, 1), rtol=1e-5, atol=1e-5)
