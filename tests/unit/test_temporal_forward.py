"""The temporal module's fast paths compute the same numbers as the plain ones.

Split attention (large token batches), the cached position-table cast, non-contiguous inputs, and ComfyUI-style
manual cast (weights stored in fp16, computed in fp32) each against a reference computed the straightforward way.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import adlightning.motion.attention as attention_module
import adlightning.motion.module as module
from adlightning.motion.module import MotionConfig, MotionModel


def temporal(seed=0, ops=nn, dim=64):
    torch.manual_seed(seed)
    model = MotionModel(MotionConfig(down_channels=(dim,) * 4, mid_channels=dim), ops=ops)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen) + (1.0 if "norm" in name and name.endswith("weight")
                                                                 else 0.0))
    return model.eval()


def first(model):
    return model.down_blocks[0].motion_modules[0]


def reference_attention(q, k, v, heads):
    """Textbook softmax(q k^T / sqrt(d)) v per head, in float64."""
    n, f, c = q.shape
    q, k, v = (t.double().view(n, f, heads, c // heads).transpose(1, 2) for t in (q, k, v))
    weights = (q @ k.transpose(-1, -2) / (c // heads) ** 0.5).softmax(-1)
    return (weights @ v).transpose(1, 2).reshape(n, f, c)


def test_split_attention_equals_one_call(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(37, 16, 64, generator=gen) for _ in range(3))
    whole = attention_module.attention(q, k, v, 8)
    monkeypatch.setattr(attention_module, "SDPA_BATCH_LIMIT", 5)   # 37 token columns -> 8 calls, the last one short
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention",
                        lambda *a: calls.append(a[0].shape[0]) or real(*a))
    split = attention_module.attention(q, k, v, 8)
    assert calls == [5] * 7 + [2]
    torch.testing.assert_close(split, whole, rtol=0, atol=0)
    torch.testing.assert_close(whole.double(), reference_attention(q, k, v, 8), rtol=1e-5, atol=1e-5)


def test_split_attention_inside_the_module(monkeypatch):
    m = first(temporal())
    x = torch.randn(2 * 8, 64, 5, 3, generator=torch.Generator().manual_seed(4))   # 30 token columns
    with torch.no_grad():
        whole = m(x, 8)
        monkeypatch.setattr(attention_module, "SDPA_BATCH_LIMIT", 7)
        split = m(x, 8)
    torch.testing.assert_close(split, whole, rtol=0, atol=0)


def test_position_table_cast_is_reused_and_follows_the_buffer():
    m = first(temporal()).to(torch.bfloat16)
    pos = m.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder
    pos.pe = pos.pe.float()   # the loader keeps tables float32
    x = torch.randn(8, 64, 2, 2, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    with torch.no_grad():
        a = m(x, 8)
        cached = pos._cast[2]
        b = m(x, 8)
        assert pos._cast[2] is cached                       # cast once, not per call
        torch.testing.assert_close(b, a, rtol=0, atol=0)
        assert torch.equal(cached, pos.pe.to(torch.bfloat16))
        pos.pe.mul_(0.5)                                    # written in place (a state-dict load): cast again
        c = m(x, 8)
        assert torch.equal(pos._cast[2], pos.pe.to(torch.bfloat16))
        assert (c - a).abs().max().item() > 0
        pos.pe = pos.pe * 2                                 # replaced (moved to a device): cast again
        torch.testing.assert_close(m(x, 8), a, rtol=0, atol=0)


def test_non_contiguous_input_gives_the_same_output():
    m = first(temporal())
    x = torch.randn(8, 64, 4, 6, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = m(x, 8)
        channels_last = m(x.to(memory_format=torch.channels_last), 8)
        strided = m(torch.cat([x, x], dim=1)[:, ::2], 8)   # every other channel of a wider tensor
    torch.testing.assert_close(channels_last, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m(torch.cat([x, x], dim=1)[:, ::2].contiguous(), 8), strided, rtol=0, atol=0)


class CastOps:
    """Like ComfyUI's manual_cast ops: weights stay in their storage dtype and are cast to the input's per call."""

    class Linear(nn.Linear):
        def forward(self, x):
            return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    class LayerNorm(nn.LayerNorm):
        def forward(self, x):
            return F.layer_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)

    class GroupNorm(nn.GroupNorm):
        def forward(self, x):
            return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


def test_manual_cast_computes_in_the_activations_dtype():
    stored = temporal(ops=CastOps).half()          # fp16 storage, as ComfyUI keeps the weights
    stored.set_weight_casting(True)
    reference = temporal().half().float()          # the same fp16-rounded weights, computed in fp32
    x = torch.randn(8, 64, 3, 3, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        got = first(stored)(x, 8)
        expected = first(reference)(x, 8)
        stored.set_weight_casting(False)           # the old behaviour: activations cast down to fp16
        in_half = first(stored)(x, 8)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert (in_half - expected).abs().max().item() > 1e-4   # computing in fp16 is a visible difference


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_weights_dtype_is_used_without_manual_cast(dtype):
    m = first(temporal()).to(dtype)
    x = torch.randn(8, 64, 2, 2, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        out = m(x, 8)
        direct = m.temporal_transformer(x.to(dtype), 8).to(torch.float32)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, direct, rtol=0, atol=0)


def test_module_compiles_as_one_graph():
    """torch.compile (core's TorchCompileModel compiles the whole UNet with the modules inserted) traces the module
    without a graph break, half-precision activations and the float32 position table included."""
    m = first(temporal()).to(torch.bfloat16)
    for pos in (b.pos_encoder for b in m.temporal_transformer.transformer_blocks[0].attention_blocks):
        pos.pe = pos.pe.float()
    x = torch.randn(16, 64, 3, 3, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    torch._dynamo.reset()
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x, 16), m(x, 16), rtol=0, atol=0)
