"""Canaries for nodes/comfy_compat.py: one test per ComfyUI internal the pack touches, each failing with the entry's
name when the ComfyUI under COMFYUI_PATH changes it. No server and no model weights: ComfyUI's modules are imported
into this process (CPU) and run on a full-size SD1.5 UNet built on the meta device (layout only) and a narrow
SD1.5-shaped UNet with random weights (forward passes). docs/comfyui_internals.md lists the same entries."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from dev.harness.make_sd15 import SD15_UNET, fill_random
from adlightning.motion.frame_norm import clip_wide
from adlightning.samplers.cond_frames import resize_cond_item
from tests.host.conftest import comfy_path, import_comfy_in_process

# AnimateDiff's SD1.5 placements: (block, index) -> (index where the motion module goes, channels there)
PLACEMENTS = {("input", 1): (2, 320), ("input", 2): (2, 320), ("input", 4): (2, 640), ("input", 5): (2, 640),
              ("input", 7): (2, 1280), ("input", 8): (2, 1280), ("input", 10): (1, 1280), ("input", 11): (1, 1280),
              ("middle", 0): (2, 1280),
              ("output", 0): (1, 1280), ("output", 1): (1, 1280), ("output", 2): (1, 1280),
              ("output", 3): (2, 1280), ("output", 4): (2, 1280), ("output", 5): (2, 1280),
              ("output", 6): (2, 640), ("output", 7): (2, 640), ("output", 8): (2, 640),
              ("output", 9): (2, 320), ("output", 10): (2, 320), ("output", 11): (2, 320)}


def changed(entry: str, what: str) -> str:
    return f"ComfyUI changed an internal the pack relies on: comfy_compat.{entry} ({what}); see docs/comfyui_internals.md"


@pytest.fixture(scope="module")
def cc():
    import_comfy_in_process()
    return importlib.import_module("adlightning.nodes.comfy_compat")


@pytest.fixture(scope="module")
def sd15(cc):
    """ComfyUI's own SD1.5 model (BaseModel + UNet) from its SD1.5 config, on the meta device: layout, no memory."""
    import comfy.model_detection
    config = comfy.model_detection.model_config_from_unet_config(dict(SD15_UNET))
    return SimpleNamespace(model=config.get_model({}, device=torch.device("meta")))


@pytest.fixture(scope="module")
def narrow_unet(cc):
    """An SD1.5-shaped UNet 10x narrower (32 base channels), random weights, for forward passes on CPU."""
    import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
    import comfy.ops
    config = {k: v for k, v in SD15_UNET.items() if k not in ("use_temporal_attention", "use_temporal_resblock")}
    unet = openaimodel.UNetModel(**{**config, "model_channels": 32}, dtype=torch.float32, device="cpu",
                                 operations=comfy.ops.disable_weight_init)
    fill_random(unet, torch.Generator().manual_seed(5))
    for m in unet.modules():   # fill_random makes norms identity; give them a scale so the test can see them
        if isinstance(m, torch.nn.GroupNorm):
            m.weight.data.uniform_(0.5, 1.5)
    return unet.eval()


def run_unet(unet, frames: int, conds: int, wrapper=None):
    import comfy.patcher_extension
    torch.manual_seed(0)
    x = torch.randn(conds * frames, 4, 8, 8) * torch.linspace(0.5, 2, conds * frames)[:, None, None, None]
    options = {"cond_or_uncond": list(range(conds))}
    if wrapper is not None:
        options["wrappers"] = {comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL: {"canary": [wrapper]}}
    with torch.no_grad():
        return unet(x, torch.full((conds * frames,), 500.0), context=torch.randn(conds * frames, 3, 768),
                    transformer_options=options)


def test_unet_layout(cc, sd15):
    """unet_of / unet_block / all_unet_blocks / temporal_insert_index / block_channels / SpatialTransformer /
    ResBlock: every AnimateDiff placement in ComfyUI's SD1.5 UNet, and blocks that take insert/pop."""
    unet = cc.unet_of(sd15)
    assert unet is not None, changed("unet_of", "BaseModel.diffusion_model with input_blocks/middle_block/output_blocks")
    assert len(cc.all_unet_blocks(unet)) == 25, changed("all_unet_blocks", "12 input, 1 middle, 12 output blocks")
    found = {}
    for (part, index) in PLACEMENTS:
        block = cc.unet_block(unet, part, index)
        found[(part, index)] = (cc.temporal_insert_index(block), cc.block_channels(block))
    assert found == PLACEMENTS, changed("temporal_insert_index/block_channels",
                                        "SpatialTransformer/ResBlock classes or the SD1.5 block contents")
    block = cc.unet_block(unet, "input", 1)
    marker = torch.nn.Identity()
    block.insert(2, marker)
    assert block[2] is marker and len(block) == 3, changed("unet_block", "blocks are nn.Sequential (insert/pop)")
    block.pop(2)
    assert len(block) == 2


def test_context_dim(cc, sd15):
    """context_dim: BaseModel.model_config.unet_config["context_dim"] is 768 for SD1.5."""
    assert cc.context_dim(sd15) == 768, changed("context_dim", "model_config.unet_config['context_dim']")


def test_frame_spanning_norms(cc, sd15):
    """frame_spanning_norms: two GroupNorms per ResBlock (22 in SD1.5) plus the output head's, none of them inside a
    SpatialTransformer."""
    unet = cc.unet_of(sd15)
    norms = cc.frame_spanning_norms(unet)
    resblocks = [m for m in unet.modules() if isinstance(m, cc.ResBlock)]
    in_attention = {id(m) for st in unet.modules() if isinstance(st, cc.SpatialTransformer) for m in st.modules()}
    assert len(resblocks) == 22 and len(norms) == 45 and len({id(n) for n in norms}) == 45, \
        changed("frame_spanning_norms", f"{len(resblocks)} ResBlocks, {len(norms)} GroupNorms found")
    assert not any(id(n) in in_attention for n in norms)
    assert all(res.in_layers[0] in norms and res.out_layers[0] in norms for res in resblocks), \
        changed("frame_spanning_norms", "ResBlock.in_layers[0]/out_layers[0] are its GroupNorms")
    assert unet.out[0] in norms, changed("frame_spanning_norms", "UNetModel.out[0] is the output GroupNorm")


def test_diffusion_model_call(cc, narrow_unet):
    """diffusion_model_call: a DIFFUSION_MODEL wrapper gets (x, timesteps, context, y, control, transformer_options)
    and the UNet as executor.class_obj; with the v1 hooks on the norms it finds, the output changes, and the hooks are
    gone after the call."""
    seen = {}

    def wrapper(executor, *args, **kwargs):
        unet, x, options = cc.diffusion_model_call(executor, args)
        seen.update(unet=unet, x=x.shape, conds=cc.cond_count(options))
        with clip_wide(cc.frame_spanning_norms(unet), x.shape[0] // cc.cond_count(options)):
            return executor(*args, **kwargs)

    plain = run_unet(narrow_unet, frames=4, conds=2)
    spanned = run_unet(narrow_unet, frames=4, conds=2, wrapper=wrapper)
    assert seen == {"unet": narrow_unet, "x": (8, 4, 8, 8), "conds": 2}, changed("diffusion_model_call", str(seen))
    assert (spanned - plain).abs().max() > 1e-3, changed("frame_spanning_norms", "hooked norms not used in forward")
    assert not any(n._forward_hooks or n._forward_pre_hooks for n in cc.frame_spanning_norms(narrow_unet))
    assert torch.equal(run_unet(narrow_unet, frames=4, conds=2), plain)


class FakePatcher:
    """Just enough of a ModelPatcher and a model for comfy.samplers.calc_cond_batch to call apply_model."""
    def prepare_state(self, *a, **k): pass
    def get_free_memory(self, *a, **k): return 1 << 40
    def apply_hooks(self, *a, **k): return {}
    def prepare_hook_patches_current_keyframe(self, *a, **k): pass


class FakeModel:
    current_patcher = FakePatcher()

    def __init__(self, seen: list, read):
        self.seen, self.read = seen, read

    def memory_required(self, *a, **k): return 0

    def apply_model(self, x, t, **c):
        self.seen.append(self.read(x, c["transformer_options"]))
        return torch.zeros_like(x)


def test_cond_count(cc):
    """cond_count: calc_cond_batch puts the batch's cond kinds in transformer_options["cond_or_uncond"]."""
    import comfy.samplers
    seen = []
    model = FakeModel(seen, lambda x, options: (x.shape[0], cc.cond_count(options)))
    x = torch.zeros(4, 4, 8, 8)
    conds = [[{"model_conds": {}, "uuid": "cond"}], [{"model_conds": {}, "uuid": "uncond"}]]
    comfy.samplers.calc_cond_batch(model, conds, x, torch.ones(4), {"transformer_options": {}})
    assert seen == [(8, 2)], changed("cond_count", f"transformer_options['cond_or_uncond'] (model saw {seen})")


def test_sampling_step(cc):
    """sampling_step: calc_cond_batch puts the call's sigma in transformer_options["sigmas"], and the sampler the
    whole schedule in transformer_options["sample_sigmas"] (read here from comfy.samplers' source)."""
    import comfy.samplers
    seen = []
    model = FakeModel(seen, lambda x, options: cc.sampling_step(options))
    schedule = torch.tensor([14.6, 5.0, 2.0, 0.9, 0.0])
    conds = [[{"model_conds": {}, "uuid": "cond"}]]
    for step in range(4):
        comfy.samplers.calc_cond_batch(model, conds, torch.zeros(2, 4, 8, 8), schedule[step].repeat(2),
                                       {"transformer_options": {"sample_sigmas": schedule}})
    assert seen == [0, 1, 2, 3], changed("sampling_step", f"transformer_options['sigmas'] (steps seen {seen})")
    assert re.search(r'\["sample_sigmas"\]\s*=\s*sigmas', inspect.getsource(comfy.samplers)), \
        changed("sampling_step", "the sampler no longer stores transformer_options['sample_sigmas']")


def test_unet_memory_required_and_free_memory(cc, sd15):
    """unet_memory_required / free_memory: BaseModel.memory_required(shape) grows with the batch; free memory of the
    load device is a positive byte count."""
    patcher = SimpleNamespace(model=sd15.model, load_device=torch.device("cpu"))
    small, large = (cc.unet_memory_required(patcher, [n, 4, 64, 64]) for n in (16, 64))
    assert 0 < small < large, changed("unet_memory_required", f"memory_required gave {small} / {large}")
    assert cc.free_memory(patcher) > 0, changed("free_memory", "get_free_memory")


def test_discrete_sampling_like(cc):
    """discrete_sampling_like / schedule_settings: ModelSamplingDiscrete's constructor reads
    model_config.sampling_settings; sqrt_linear gives AnimateDiff's schedule (sigma_max 14.6146 -> sqrt_linear's)."""
    import comfy.model_base
    import comfy.supported_models
    current = comfy.model_base.model_sampling(comfy.supported_models.SD15({}), comfy.model_base.ModelType.EPS)
    settings = cc.schedule_settings(current)
    assert settings == {"linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000, "zsnr": False}, \
        changed("schedule_settings", str(settings))
    ours = cc.discrete_sampling_like(current, **settings, beta_schedule="sqrt_linear")
    assert type(ours) is type(current)
    betas = torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64)   # sqrt_linear: betas linear in beta itself
    alphas = torch.cumprod(1 - betas, 0)
    expected = ((1 - alphas) / alphas).sqrt().float()
    torch.testing.assert_close(ours.sigmas, expected, rtol=1e-5, atol=0, msg=changed(
        "discrete_sampling_like", "ModelSamplingDiscrete(model_config) no longer builds the sqrt_linear schedule"))
    assert not torch.allclose(current.sigmas, expected)


def test_sigma_table(cc):
    """sigma_table: a MODEL's model_sampling keeps its discrete sigma table as `.sigmas` (one per training step)."""
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models
    sampling = comfy.model_base.model_sampling(comfy.supported_models.SD15({}), comfy.model_base.ModelType.EPS)
    patcher = SimpleNamespace(get_model_object=lambda name: {"model_sampling": sampling}[name])
    table = cc.sigma_table(patcher)
    assert table.dtype == torch.float32 and table.shape == (1000,), changed("sigma_table", str(table.shape))
    assert abs(table[-1].item() - 14.6146) < 1e-3 and abs(table[0].item() - 0.0292) < 1e-3, \
        changed("sigma_table", "model_sampling.sigmas is no longer the SD1.5 sigma table")
    assert "get_model_object" in dir(comfy.model_patcher.ModelPatcher)


def test_context_length(cc):
    """context_length: core's Context Windows node puts an IndexListContextHandler with `context_length` into
    model_options["context_handler"]."""
    import comfy.context_windows as cw
    handler = cw.IndexListContextHandler(cw.get_matching_context_schedule(cw.ContextSchedules.STATIC_STANDARD),
                                         cw.get_matching_fuse_method(cw.ContextFuseMethods.PYRAMID), context_length=24,
                                         context_overlap=4, dim=0)
    assert cc.context_length(SimpleNamespace(model_options={"context_handler": handler})) == 24, \
        changed("context_length", "model_options['context_handler'].context_length")
    assert cc.context_length(SimpleNamespace(model_options={})) is None


def test_controlnet_hint(cc):
    """chained_controlnets / controlnet_hint / set_controlnet_hint: core's ControlNet keeps its hint in
    cond_hint_original, its resized cache in cond_hint (rebuilt when None), and a chained one in previous_controlnet,
    as set by set_cond_hint and set_previous_controlnet."""
    import comfy.controlnet
    first, second = comfy.controlnet.ControlBase(), comfy.controlnet.ControlBase()
    hint = torch.rand(6, 3, 8, 8)
    second.set_cond_hint(hint, 0.8, (0.0, 1.0))
    second.set_previous_controlnet(first)
    assert cc.chained_controlnets(second) == [second, first], changed("chained_controlnets", "previous_controlnet")
    assert cc.controlnet_hint(second) is hint, changed("controlnet_hint", "cond_hint_original")
    second.cond_hint = torch.zeros(1)
    cc.set_controlnet_hint(second, hint[:2])
    assert second.cond_hint is None and cc.controlnet_hint(second).shape[0] == 2
    source = inspect.getsource(comfy.controlnet.ControlNet.get_control)
    assert "self.cond_hint is None" in source and "self.cond_hint_original" in source, changed(
        "set_controlnet_hint", "ControlNet.get_control no longer rebuilds cond_hint from cond_hint_original")


def test_upscale_loader_and_oom(cc):
    """core_upscale_model_loader / upscale_model_patcher / is_oom: core's UpscaleModelLoader.execute(model_name) is
    callable as a function; a plain descriptor has no patcher; an out-of-memory error is one and Cancel is not."""
    import comfy.model_management as mm
    loader = cc.core_upscale_model_loader()
    assert callable(getattr(loader, "execute", None)), changed("core_upscale_model_loader", "UpscaleModelLoader.execute")
    params = list(inspect.signature(loader.execute).parameters)
    assert params[-1] == "model_name", changed("core_upscale_model_loader", f"execute{tuple(params)}")
    assert cc.upscale_model_patcher(SimpleNamespace()) is None
    assert cc.is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory")), changed("is_oom", "OOM not recognised")
    assert not cc.is_oom(mm.InterruptProcessingException()), changed("is_oom", "Cancel taken for an OOM")
    assert not cc.is_oom(ValueError("x"))


def test_previewer(cc, sd15):
    """previewer / preview_image: latent_preview.get_previewer(device, latent_format) and its
    decode_latent_to_preview_image("JPEG", x0) -> (format, image, size)."""
    import latent_preview
    params = list(inspect.signature(latent_preview.get_previewer).parameters)
    assert params[:2] == ["device", "latent_format"], changed("previewer", f"get_previewer{tuple(params)}")
    import comfy.latent_formats
    rgb = latent_preview.Latent2RGBPreviewer(comfy.latent_formats.SD15().latent_rgb_factors)
    out = cc.preview_image(rgb, torch.zeros(2, 4, 8, 8))
    assert out[0] == "JPEG" and out[1].size == (8, 8), changed("preview_image", "decode_latent_to_preview_image")
    patcher = SimpleNamespace(load_device=torch.device("cpu"), model=SimpleNamespace(latent_format=comfy.latent_formats.SD15()))
    cc.previewer(patcher)   # must not raise (None when previews are off)


def test_context_handler_conventions(cc):
    """handler_step, context_window, disable_causal_window_fix and the context-callback signatures: core's IndexListContextHandler
    calls the schedule with (num_frames, handler, model_options), the fuse method with idxs=, RESIZE_COND_ITEM and
    COMBINE_CONTEXT_WINDOW_RESULTS callbacks as the pack's functions expect, keeps the step in `_step`, and with the
    causal fix off gives the UNet exactly the planned frames."""
    import comfy.context_windows as cw
    import comfy.patcher_extension
    calls = {"layout": [], "combined": 0}

    def layout(num_frames, handler, model_options):
        calls["layout"].append((num_frames, cc.handler_step(handler)))
        return [list(range(0, 16)), list(range(12, 28)), list(range(24, 40))]

    def weights(length, idxs=None, **unused):
        return [1.0] * len(idxs)

    def combined(*unused):
        calls["combined"] += 1

    handler = cw.IndexListContextHandler(cw.ContextSchedule("canary", layout), cw.ContextFuseMethod("canary", weights),
                                         context_length=16, context_overlap=4, dim=0)
    cc.disable_causal_window_fix(handler)
    comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.RESIZE_COND_ITEM, "canary",
                                                  resize_cond_item, handler.callbacks)
    comfy.patcher_extension.add_callback_with_key(cw.IndexListCallbacks.COMBINE_CONTEXT_WINDOW_RESULTS, "canary",
                                                  combined, handler.callbacks)
    sigmas = torch.tensor([14.6, 7.0, 2.0, 0.0])
    x = torch.arange(40.0).view(40, 1, 1, 1).expand(40, 4, 2, 2).contiguous()
    conds = [[{"model_conds": {"per_frame": torch.arange(40.0).view(40, 1)}}]]
    model = SimpleNamespace(latent_format=SimpleNamespace(temporal_downscale_ratio=1),
                            resize_cond_for_context_window=lambda *a, **k: None)
    sliced = []

    def calc_cond_batch(model, sub_conds, sub_x, sub_t, options):
        sliced.append(sub_conds[0][0]["model_conds"]["per_frame"].view(-1).tolist())
        window = cc.context_window(options["transformer_options"])
        assert [float(i) for i in getattr(window, "index_list", [])] == sliced[-1], changed(
            "context_window", "transformer_options['context_window'] is not the window being evaluated")
        assert getattr(window, "total_frames", None) == 40, changed("context_window", "window.total_frames")
        assert sub_x[:, 0, 0, 0].tolist() == sliced[-1], changed("disable_causal_window_fix", "UNet saw other frames")
        return [sub_x * 2]

    out = handler.execute(calc_cond_batch, model, conds, x, torch.full((40,), 7.0),
                          {"transformer_options": {"sample_sigmas": sigmas}})
    assert calls["layout"] == [(40, 1)], changed("handler_step", f"schedule called as {calls['layout']}")
    assert calls["combined"] == 3, changed("context callbacks", "COMBINE_CONTEXT_WINDOW_RESULTS once per window")
    assert sliced[1] == [float(i) for i in range(12, 28)], changed("context callbacks", "RESIZE_COND_ITEM")
    assert torch.equal(out[0], x * 2)


def test_add_model_extensions(cc, tmp_path):
    """add_model_extensions: folder_paths.folder_names_and_paths[name] is (paths, extensions), and a folder made by
    add_model_folder_path starts with an empty extension set."""
    import folder_paths
    name = "adlightning_canary_folder"
    folder_paths.add_model_folder_path(name, str(tmp_path))
    try:
        cc.add_model_extensions(name, {".safetensors"})
        (tmp_path / "a.safetensors").write_bytes(b"")
        (tmp_path / "README.txt").write_text("x")
        assert folder_paths.get_folder_paths(name) == [str(tmp_path)]
        assert folder_paths.get_filename_list(name) == ["a.safetensors"], changed(
            "add_model_extensions", "folder_names_and_paths[name] = (paths, extensions)")
    finally:
        folder_paths.folder_names_and_paths.pop(name, None)


def test_upscale_memory_factor(cc):
    """UPSCALE_MEMORY_FACTOR: core's Upscale Image (using Model) still estimates its working memory with `* 384.0`."""
    source = (Path(comfy_path()) / "comfy_extras" / "nodes_upscale_model.py").read_text()   # read, not imported
    factors = re.findall(r"memory_required\s*[+]?=.*\*\s*([0-9.]+)\s*#", source)
    assert [float(f) for f in factors] == [float(cc.UPSCALE_MEMORY_FACTOR)], \
        changed("UPSCALE_MEMORY_FACTOR", f"core's factor is now {factors}")


def pinning_changed(what: str) -> str:
    return (f"ComfyUI changed the per-step noise_mask pinning the keyframe nodes rely on ({what}); see "
            f"docs/comfyui_internals.md and docs/keyframes.md")


def test_noise_mask_pinning(cc):
    """Keyframe pinning (nodes/keyframe_nodes.py) relies on core's per-step inpainting, not on code of its own: a
    LATENT's noise_mask reaches KSAMPLER.sample (after prepare_mask, which leaves a mask at the latent's own size as
    it is), and KSamplerX0Inpaint mixes x with latent + noise * sigma before each model call and the model's output
    with the latent after it. Run core's real Euler KSAMPLER on a frame-mixing toy model and hold it to
    samplers/keyframes.euler_reference, which the unit tier tests."""
    import comfy.model_base
    import comfy.sampler_helpers
    import comfy.samplers
    import comfy.supported_models
    from adlightning.samplers import keyframes as kf
    from adlightning.samplers.schedules import sigmas_for
    current = comfy.model_base.model_sampling(comfy.supported_models.SD15({}), comfy.model_base.ModelType.EPS)
    sampling = cc.discrete_sampling_like(current, **cc.schedule_settings(current), beta_schedule="sqrt_linear")

    def toy(x, sigma):
        mixed = 0.5 * x + 0.25 * torch.roll(x, 1, 0) + 0.25 * torch.roll(x, -1, 0)
        return torch.tanh(mixed / (1.0 + sigma.reshape(-1, 1, 1, 1))) * 0.8

    inner = SimpleNamespace(model_sampling=sampling)
    inner.scale_latent_inpaint = lambda sigma, noise, latent_image, **kw: \
        comfy.model_base.BaseModel.scale_latent_inpaint(inner, sigma=sigma, noise=noise, latent_image=latent_image)
    wrap = SimpleNamespace(inner_model=inner, model_patcher=SimpleNamespace(model=inner), cfg=1.0)
    calls = []

    class Wrap:   # what KSamplerX0Inpaint calls: model(x, sigma, model_options=..., seed=...)
        inner_model, model_patcher, cfg = inner, wrap.model_patcher, 1.0

        def __call__(self, x, sigma, model_options=None, seed=None):
            calls.append(x.clone())
            return toy(x, sigma)

    g = torch.Generator().manual_seed(4)
    latent, noise = torch.randn(6, 4, 5, 3, generator=g), torch.randn(6, 4, 5, 3, generator=g)
    mask = kf.spatial_mask(kf.frame_mask(6, [0, 5], [1.0, 0.4]), 5, 3)
    prepared = comfy.sampler_helpers.prepare_mask(mask, latent.shape, "cpu")
    assert torch.equal(prepared[:, :1], mask) and prepared.shape == latent.shape, \
        pinning_changed("prepare_mask no longer passes a mask at the latent's size on as it is")
    for steps, denoise in ((1, 1.0), (4, 1.0), (4, 0.5), (8, 0.25)):
        sigmas = sigmas_for("trailing", sampling.sigmas, steps, denoise)
        calls.clear()
        core = comfy.samplers.sampler_object("euler").sample(
            Wrap(), sigmas, {"model_options": {}, "seed": 0}, None, noise, latent, prepared, True)
        ours = kf.euler_reference(lambda x, s: toy(x, s.reshape(1)), noise, sigmas, latent, mask,
                                  sigma_max=float(sampling.sigma_max))
        torch.testing.assert_close(core, ours, rtol=0, atol=1e-5, msg=pinning_changed(
            f"KSamplerX0Inpaint's per-step pinning differs from the reference at {steps} steps, denoise {denoise}"))
        assert len(calls) == len(sigmas) - 1
        assert (core[0] - latent[0]).abs().max() <= 1e-4
