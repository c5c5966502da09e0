"""Motion LoRA math: the low-rank side path equals merging W + s * up @ down, without ever touching W."""
import copy

import pytest
import torch

from adlightning.motion.formats import expected_keys
from adlightning.motion.lora import LoRASet, match, parse
from adlightning.motion.module import MotionConfig, MotionModel, MotionModuleError
from dev.harness.motion_files import random_motion_lora, random_state_dict

SMALL = MotionConfig(pe_length=32, has_mid_block=True, down_channels=(64, 128, 128, 128), mid_channels=128)
SMALL_NO_MID = MotionConfig(pe_length=32, has_mid_block=False, down_channels=(64, 128, 128, 128), mid_channels=128)


def small_model(config=SMALL, seed=0):
    model = MotionModel(config).eval().requires_grad_(False)
    model.load_state_dict({k: v.float() for k, v in random_state_dict(config, seed).items()})
    return model


def merged(model, loras):
    """The reference: a copy of the model with W + sum(s * up @ down) written into the weights (float64 math)."""
    out = copy.deepcopy(model)
    sd = out.state_dict()
    for lora, strength in loras:
        for key, pair in lora.pairs.items():
            delta = pair.up.double() @ pair.down.double() * (strength * pair.scale)
            sd[key] = (sd[key].double() + delta).float()
    out.load_state_dict(sd)
    return out


def run_all(model, lora_set=None, seed=0):
    """Every temporal module of the model on its own random input; returns the list of outputs."""
    outs = []
    gen = torch.Generator().manual_seed(seed)
    for _, _, module in model.placements():
        c = module.temporal_transformer.proj_in.in_features
        x = torch.randn(2 * 8, c, 3, 3, generator=gen)
        outs.append(module(x, 8, lora_set.for_module(module) if lora_set else None))
    return outs


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def lora_a():
    return parse(random_motion_lora(SMALL, rank=64, seed=1), "v2_lora_ZoomIn.ckpt")


@pytest.fixture(scope="module")
def lora_b():
    return parse(random_motion_lora(SMALL, rank=64, seed=2), "v2_lora_PanLeft.ckpt")


def test_parse_original_layout(lora_a):
    # 21 temporal modules x 2 attentions x q/k/v/out
    assert len(lora_a.pairs) == 21 * 8 and lora_a.rank == 64
    key = "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_out.0.weight"
    assert lora_a.pairs[key].up.shape == (128, 64) and lora_a.pairs[key].down.shape == (64, 128)


@pytest.mark.parametrize("strength", [0.75, 1.0, -0.5])
def test_side_path_equals_merged_weights(model, lora_a, strength):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = run_all(model, LoRASet(model, [(lora_a, strength)]))
    want = run_all(merged(model, [(lora_a, strength)]))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    base = run_all(model)
    assert all((g - b).abs().max() > 1e-3 for g, b in zip(got, base))   # every module is affected
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)          # W is never written


def test_two_loras_add(model, lora_a, lora_b):
    got = run_all(model, LoRASet(model, [(lora_a, 0.8), (lora_b, 0.5)]))
    want = run_all(merged(model, [(lora_a, 0.8), (lora_b, 0.5)]))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_strength_zero_is_bit_identical(model, lora_a, lora_b):
    empty = LoRASet(model, [(lora_a, 0.0)])
    assert not empty
    base = run_all(model)
    assert all(torch.equal(g, b) for g, b in zip(run_all(model, empty), base))
    assert all(torch.equal(g, b) for g, b in zip(run_all(model, LoRASet(model, [(lora_a, 1.0)]).rescaled(0.0)), base))
    # one LoRA at 0 next to another: exactly the other alone
    alone = run_all(model, LoRASet(model, [(lora_b, 0.6)]))
    assert all(torch.equal(g, b) for g, b in zip(run_all(model, LoRASet(model, [(lora_a, 0.0), (lora_b, 0.6)])),
                                                 alone))


def test_rescaled_equals_rebuilt_at_the_product_strength(model, lora_a, lora_b):
    got = run_all(model, LoRASet(model, [(lora_a, 0.8), (lora_b, 0.4)]).rescaled(0.5))
    want = run_all(model, LoRASet(model, [(lora_a, 0.4), (lora_b, 0.2)]))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_diffusers_and_peft_key_styles_parse_to_the_same_targets(lora_a):
    sd = random_motion_lora(SMALL, seed=1)
    diffusers_style, peft_style = {}, {}
    for key, value in sd.items():
        k = (key.replace(".temporal_transformer", "").replace(".attention_blocks.0.", ".attn1.")
             .replace(".attention_blocks.1.", ".attn2."))
        proj, role = k.split(".processor.")[1].split("_lora.")
        base = k.split(".processor.")[0]
        linear = "to_out.0" if proj == "to_out" else proj
        diffusers_style[f"{base}.{linear}.lora.{role}"] = value
        peft_style[f"unet.{base}.{linear}.lora_{'A' if role.startswith('down') else 'B'}.weight"] = value
    for variant in (diffusers_style, peft_style):
        parsed = parse(variant, "converted.safetensors")
        assert set(parsed.pairs) == set(lora_a.pairs)
        assert all(torch.equal(parsed.pairs[k].up, lora_a.pairs[k].up) for k in parsed.pairs)


def test_alpha_scales_by_alpha_over_rank(model):
    sd = random_motion_lora(SMALL, rank=16, seed=3)
    key = next(k for k in sd if k.endswith("to_q_lora.down.weight"))
    sd[key.replace(".down.weight", ".alpha")] = torch.tensor(8.0)
    lora = parse(sd, "alpha.safetensors")
    target = key.replace(".processor.to_q_lora.down.weight", ".to_q.weight")
    assert lora.pairs[target].scale == 0.5
    assert sum(p.scale != 1.0 for p in lora.pairs.values()) == 1


def test_match_reports_counts_and_skips_mid_block_on_v3(lora_a):
    assert match(lora_a, small_model()).matched == 168
    report = match(lora_a, small_model(SMALL_NO_MID))
    assert (report.matched, report.skipped_mid) == (160, 8)
    assert "8 mid-block projections skipped" in report.report("v2_lora_ZoomIn.ckpt")


def test_a_full_size_lora_is_held_as_77_mb_of_float32_factors_on_every_projection():
    """What motion/lora.py promises: the rank-64 factors, float32 (cast once at parse), ~77 MB, never a dense delta;
    and a LoRA for every projection matches every q/k/v/out weight of the module (21 modules x 2 attentions x 4)."""
    config = MotionConfig()
    lora = parse(random_motion_lora(config, rank=64, dtype=torch.float16), "v2_lora_ZoomIn.ckpt")
    assert all(t.dtype == torch.float32 for p in lora.pairs.values() for t in (p.up, p.down))
    assert sum(p.up.nbytes + p.down.nbytes for p in lora.pairs.values()) == pytest.approx(77.3e6, rel=0.01)
    projections = [k for k in expected_keys(config) if ".attention_blocks." in k and "pos_encoder" not in k
                   and k.endswith("weight")]
    with torch.device("meta"):
        model = MotionModel(config)
    assert match(lora, model).matched == len(projections) == 168


def test_lora_for_another_model_shape_is_rejected(model):
    sdxl_like = random_motion_lora(MotionConfig(down_channels=(320, 640, 1280, 1280)), rank=8)
    with pytest.raises(MotionModuleError, match="does not fit this motion module"):
        match(parse(sdxl_like, "sdxl_motion_lora.safetensors"), model)


@pytest.mark.parametrize("sd,message", [
    ({k: v for k, v in random_state_dict(SMALL).items()}, "is a full motion module, not a motion LoRA"),
    ({"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight": torch.zeros(4, 8),
      "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight": torch.zeros(8, 4)},
     "spatial adapter"),
    ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)}, "is an image LoRA"),
    ({"something.else": torch.zeros(1)}, "holds no LoRA weights"),
    ({"down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor."
      "to_q_lora.down.weight": torch.zeros(4, 8)}, "without its partner"),
])
def test_rejections(sd, message):
    with pytest.raises(MotionModuleError, match=message):
        parse(sd, "file.safetensors")


def test_no_match_at_all_is_an_error(model):
    sd = {"down_blocks.7.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor."
          "to_q_lora.down.weight": torch.zeros(4, 64),
          "down_blocks.7.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor."
          "to_q_lora.up.weight": torch.zeros(64, 4)}
    with pytest.raises(MotionModuleError, match="matched none of the motion module's"):
        match(parse(sd, "odd.safetensors"), model)
