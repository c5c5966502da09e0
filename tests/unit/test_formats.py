"""Motion-module files: family/version/layout detection, both Lightning layouts, and clear rejections."""
import pickle

import pytest
import safetensors.torch
import torch

from adlightning.motion.formats import (LIGHTNING_BY_SHA256, OFFICIAL_LIGHTNING_FILES, expected_keys, lightning_steps_from_name,
                            normalize, with_sha256)
from adlightning.motion.loader import load_motion_module, read_state_dict
from adlightning.motion.module import MotionConfig, MotionModuleError, sinusoidal_table
from dev.harness.motion_files import VARIANTS, cached_file, random_state_dict, to_diffusers_keys, variant_state_dict


def meta_state_dict(config: MotionConfig) -> dict:
    """Shapes only: enough for detection tests, no memory."""
    return {k: torch.empty(s, device="meta") for k, s in expected_keys(config).items()}


V2 = MotionConfig(pe_length=32, has_mid_block=True)


@pytest.mark.parametrize("variant,tensors,family,version,pe,mid,layout", [
    ("v1", 560, "AnimateDiff", "v1", 24, False, "original"),
    ("v2", 588, "AnimateDiff", "v2", 32, True, "original"),
    ("v3", 560, "AnimateDiff", "v3", 32, False, "original"),
    ("lcm", 546, "AnimateLCM", "v2", 64, True, "original"),
    ("diffusers", 567, "AnimateDiff", "v2", 32, True, "diffusers"),
])
def test_detects_each_family(variant, tensors, family, version, pe, mid, layout):
    config, kind = VARIANTS[variant]
    sd = meta_state_dict(config)
    if kind == "diffusers":
        sd = to_diffusers_keys(sd)
    elif kind == "no-pe":
        sd = {k: v for k, v in sd.items() if not k.endswith("pos_encoder.pe")}
    assert len(sd) == tensors
    out, cfg, info = normalize(sd, f"{variant}.safetensors")
    assert (info.family, info.version, info.pe_length, info.has_mid_block, info.layout, info.tensors) == \
           (family, version, pe, mid, layout, tensors)
    assert cfg == config
    assert set(out) == set(expected_keys(config))
    assert info.lightning_steps is None


def test_diffusers_motion_adapter_keys_load_as_the_588_original_ones():
    """diffusers' own MotionAdapter() key set (567: one position table per block) is read as a diffusers-layout v2
    module with the 588 keys of the comfyui release; the fixture writer makes exactly that key set, so every
    diffusers-layout fixture test reads a file shaped as diffusers writes it."""
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):
        adapter = diffusers.MotionAdapter()
    sd = {k: torch.empty(v.shape, device="meta") for k, v in adapter.state_dict().items()}
    out, config, info = normalize(sd, "animatediff_lightning_4step_diffusers.safetensors")
    assert (info.layout, info.version, info.tensors, info.pe_length, info.lightning_steps) == \
           ("diffusers", "v2", 567, 32, 4)
    assert config == V2 and set(out) == set(meta_state_dict(V2)) and len(out) == 588
    assert set(to_diffusers_keys(meta_state_dict(V2))) == set(sd)


@pytest.mark.parametrize("name,steps", [
    ("animatediff_lightning_1step_comfyui.safetensors", 1),
    ("animatediff_lightning_2step_diffusers.safetensors", 2),
    ("animatediff_lightning_4step_comfyui.safetensors", 4),
    ("animatediff_lightning_8step_diffusers.safetensors", 8),
    ("sub/dir/AnimateDiff-Lightning-8steps-1.5.safetensors", 8),
    ("animatediff-lightning-4steps-1.5.safetensors", 4),
    ("AnimateDiff_Lightning_2_step.ckpt", 2),
    ("mm_sd_v15_v2.ckpt", None),
    ("lightning_16step.safetensors", None),
    ("v3_sd15_mm.ckpt", None),
])
def test_lightning_steps_from_name(name, steps):
    assert lightning_steps_from_name(name) == steps


def test_lightning_steps_from_official_sha256():
    _, _, info = normalize(meta_state_dict(V2), "renamed.safetensors")
    assert info.family == "AnimateDiff" and info.lightning_steps is None
    assert len(LIGHTNING_BY_SHA256) == 8 and len(OFFICIAL_LIGHTNING_FILES) == 8
    sha = OFFICIAL_LIGHTNING_FILES["animatediff_lightning_8step_diffusers.safetensors"][0]
    found = with_sha256(info, sha)
    assert (found.family, found.lightning_steps, found.step_source) == ("Lightning", 8, "sha256")
    assert with_sha256(info, "0" * 64) == info


@pytest.fixture(scope="module")
def v2_file():
    return cached_file("v2", "animatediff_lightning_4step_comfyui.safetensors")


@pytest.fixture(scope="module")
def diffusers_file():
    return cached_file("diffusers", "animatediff_lightning_4step_diffusers.safetensors")


def test_both_lightning_layouts_load_to_identical_weights(v2_file, diffusers_file):
    a, info_a = load_motion_module(str(v2_file))
    b, info_b = load_motion_module(str(diffusers_file))
    assert (info_a.layout, info_a.tensors, info_a.lightning_steps) == ("original", 588, 4)
    assert (info_b.layout, info_b.tensors, info_b.lightning_steps) == ("diffusers", 567, 4)
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb) and len(sa) == 588
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the module really holds the file's numbers (and the position table is the released sinusoid)
    raw = read_state_dict(str(v2_file))
    key = "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_v.weight"
    assert torch.equal(sa[key], raw[key])
    pe = sa["down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"]
    assert torch.equal(pe, sinusoidal_table(32, 320))


def test_load_casts_to_requested_dtype(v2_file):
    model, _ = load_motion_module(str(v2_file), dtype=torch.float32)
    w = model.down_blocks[0].motion_modules[0].temporal_transformer.proj_in.weight
    assert w.dtype == torch.float32 and not w.requires_grad and w.device.type == "cpu"


def test_animatelcm_gets_sinusoidal_64_table():
    sd = variant_state_dict("lcm")
    out, cfg, info = normalize(sd, "AnimateLCM_sd15_t2v.ckpt")
    pe = out["up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"]
    assert torch.equal(pe, sinusoidal_table(64, 320)) and info.family == "AnimateLCM"


def test_ckpt_weights_only_load(tmp_path):
    sd = random_state_dict(MotionConfig(pe_length=24, has_mid_block=False), seed=3)
    path = tmp_path / "mm_sd_v15.ckpt"
    torch.save({"state_dict": sd}, path)
    model, info = load_motion_module(str(path))
    assert (info.version, info.pe_length) == ("v1", 24)
    key = "up_blocks.0.motion_modules.1.temporal_transformer.proj_out.weight"
    assert torch.equal(model.state_dict()[key], sd[key])


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"x": _Payload()}, f)
    with pytest.raises(MotionModuleError, match=r"'evil.ckpt' holds Python objects besides tensors") as err:
        read_state_dict(str(path))
    assert "must never run" not in capsys.readouterr().out
    message = str(err.value)
    # torch's own advice (re-run with weights_only=False, "will likely succeed") must not reach the user
    assert "Do not load this file with pickle enabled" in message and ".safetensors release" in message
    assert "likely succeed" not in message and "weights_only` set to" not in message and err.value.__cause__ is None


def test_a_truncated_ckpt_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "mm_sd_v15_v2.ckpt"
    path.write_bytes(b"PK\x03\x04 cut off")
    with pytest.raises(MotionModuleError, match=r"'mm_sd_v15_v2.ckpt' could not be read .* download it again"):
        read_state_dict(str(path))


def _lora_keys(prefix):
    return {f"{prefix}.processor.to_q_lora.down.weight": torch.zeros(64, 320),
            f"{prefix}.processor.to_q_lora.up.weight": torch.zeros(320, 64)}


@pytest.mark.parametrize("sd,message", [
    ({"down_blocks.0.temporal_attentions.0.pos_encoder.positional_encoding": torch.zeros(1)}, "HotshotXL"),
    ({f"down_blocks.{i}.motion_modules.0.temporal_transformer.norm.weight": torch.zeros(320) for i in range(3)},
     "SDXL motion module"),
    (_lora_keys("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0"),
     "is a motion LoRA, not a motion module"),
    (_lora_keys("down_blocks.0.attentions.0.transformer_blocks.0.attn1"), "spatial adapter"),
    ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(1)}, "image LoRA"),
    ({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, "Stable Diffusion checkpoint"),
    ({"conv_in.weight": torch.zeros(1)}, "PIA"),
    ({"foo.bar": torch.zeros(1)}, "holds no AnimateDiff temporal layers"),
    ({}, "no tensors at all"),
])
def test_rejections_name_the_file_and_what_it_is(sd, message):
    with pytest.raises(MotionModuleError, match=message) as err:
        normalize(sd, "some_file.safetensors")
    assert "'some_file.safetensors'" in str(err.value)


def test_incomplete_module_is_rejected():
    sd = meta_state_dict(V2)
    del sd["up_blocks.2.motion_modules.1.temporal_transformer.proj_in.bias"]
    with pytest.raises(MotionModuleError, match=r"incomplete: 1 of 588 tensors are missing \(first: up_blocks.2"):
        normalize(sd, "cut.safetensors")


def test_wrong_shapes_are_rejected():
    sd = meta_state_dict(V2)
    key = "mid_block.motion_modules.0.temporal_transformer.proj_in.weight"
    sd[key] = torch.empty(1280, 640, device="meta")
    with pytest.raises(MotionModuleError, match="unexpected shape"):
        normalize(sd, "odd.safetensors")


def test_truncated_safetensors_file(tmp_path, v2_file):
    path = tmp_path / "animatediff_lightning_4step_comfyui.safetensors"
    path.write_bytes(v2_file.read_bytes()[:4096])
    with pytest.raises(MotionModuleError, match=r"'animatediff_lightning_4step_comfyui.safetensors' is not a "
                                                r"readable .safetensors file .*truncated"):
        read_state_dict(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(MotionModuleError, match="does not exist"):
        read_state_dict(str(tmp_path / "nope.safetensors"))


def test_small_truncated_but_valid_header_file(tmp_path):
    # a well-formed file that simply lacks most of a module: the loader says which tensors are missing
    sd = {k: v for k, v in random_state_dict(V2).items() if k.startswith("down_blocks.0.")}
    path = tmp_path / "partial.safetensors"
    safetensors.torch.save_file(sd, str(path))
    with pytest.raises(MotionModuleError, match="'partial.safetensors' is incomplete"):
        load_motion_module(str(path))
