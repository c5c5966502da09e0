"""Real-ESRGAN release layouts through spandrel, tiled against whole-frame, and the clip pipeline around them."""
import pytest
import torch
from spandrel import ImageModelDescriptor, ModelTiling, SizeRequirements

from adlightning.upscaling.resize import resize_frames, scaled_size
from adlightning.upscaling.temporal_stabilize import stabilize
from adlightning.upscaling.tiles import tiled_apply
from adlightning.upscaling.upscale_models import (UpscaleModelError, check_upscale_model, model_summary, unreadable_file,
                                      upscale_frames)
from dev.harness.upscale_files import load_release, release_state_dict

# Block counts of the 23-block releases cut to 2 so the tier stays fast; every key and shape is otherwise as released.
SMALL = {"RealESRGAN_x4plus.pth": {"num_blocks": 2}, "RealESRGAN_x2plus.pth": {"num_blocks": 2}}
EXPECTED = {  # name: (spandrel architecture id, scale, tags, wrapper key of the released file)
    "RealESRGAN_x4plus.pth": ("ESRGAN", 4, ["64nf", "23nb"], "params_ema"),
    "RealESRGAN_x2plus.pth": ("ESRGAN", 2, ["64nf", "23nb", "unshuffle"], "params_ema"),
    "RealESRGAN_x4plus_anime_6B.pth": ("ESRGAN", 4, ["64nf", "6nb"], "params_ema"),
    "realesr-animevideov3.pth": ("Compact", 4, ["64nf", "16nc"], "params"),
    "realesr-general-x4v3.pth": ("Compact", 4, ["64nf", "32nc"], "params"),
}
ONE_LEVEL = 1 / 255


def frames(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """IMAGE-layout frames with image-like statistics: smooth colour fields plus some fine texture."""
    gen = torch.Generator().manual_seed(seed)
    smooth = torch.rand(count, 3, height // 6 + 2, width // 6 + 2, generator=gen)
    smooth = torch.nn.functional.interpolate(smooth, size=(height, width), mode="bilinear", align_corners=False)
    texture = 0.1 * torch.rand(count, 3, height, width, generator=gen)
    return (0.9 * smooth + texture).clamp(0, 1).movedim(1, -1)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_release_layouts_are_detected_as_released(name):
    arch, scale, tags, wrapper = EXPECTED[name]
    state = release_state_dict(name)
    assert list(state) == [wrapper]
    model = load_release(name)
    assert (model.architecture.id, model.scale, model.tags) == (arch, scale, tags)
    assert (model.input_channels, model.output_channels) == (3, 3)
    assert model.size_requirements.multiple_of == (4 if name == "RealESRGAN_x2plus.pth" else 1)
    check_upscale_model(model)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tiled_equals_whole_frame_within_a_level(name):
    """Default overlap (32), a tile small enough for 2 x 2 tiles on an odd-sized frame."""
    model = load_release(name, **SMALL.get(name, {}))
    x = frames(1, 53, 67).movedim(-1, 1)
    with torch.no_grad():
        whole = model(x)
        tiled = tiled_apply(x, model, model.scale, 48, 32, model.size_requirements.multiple_of).clamp(0, 1)
    assert tiled.shape == whole.shape == (1, 3, 53 * model.scale, 67 * model.scale)
    clipped = ((whole <= 0) | (whole >= 1)).float().mean()
    assert clipped < 0.01, "a saturated random model would make this comparison vacuous"
    assert whole.std() > 0.05
    difference = (tiled - whole).abs()
    assert difference.max() < 4 * ONE_LEVEL
    assert difference.mean() < 0.25 * ONE_LEVEL


@pytest.mark.parametrize("count", [1, 16])
def test_clip_pipeline_batches_frames_and_matches_whole_frames(count):
    """2 body convs: a receptive field of 4 px, inside the quarter-overlap, so tiles must agree to float rounding."""
    model = load_release("realesr-animevideov3.pth", num_conv=2)
    images = frames(count, 37, 45, seed=count)
    progress = []
    out = upscale_frames(images, model, scale=0, tile=32, overlap=16, temporal_stabilize=False, frame_batch=16,
                         on_progress=lambda done, total: progress.append((done, total)))
    assert out.shape == (count, 37 * 4, 45 * 4, 3)
    with torch.no_grad():
        whole = torch.cat([model(f[None]) for f in images.movedim(-1, 1)]).movedim(1, -1)
    assert (out - whole).abs().max() < 1e-5
    assert progress[-1] == (count * 4, count * 4)       # 2 x 2 tiles per frame
    one_by_one = upscale_frames(images, model, scale=0, tile=32, overlap=16, temporal_stabilize=False, frame_batch=1)
    assert (out - one_by_one).abs().max() < 1e-6


@pytest.mark.parametrize("scale,expected", [(2.0, (54, 70)), (1.5, (40, 52)), (4.0, (108, 140)), (6.0, (162, 210))])
def test_target_scale_resizes_the_models_output(scale, expected):
    model = load_release("realesr-general-x4v3.pth")
    images = frames(2, 27, 35)
    native = upscale_frames(images, model, scale=0, temporal_stabilize=False)
    out = upscale_frames(images, model, scale=scale, temporal_stabilize=False)
    assert scaled_size(27, 35, scale) == expected
    assert out.shape == (2, *expected, 3)
    reference = resize_frames(native.movedim(-1, 1), expected).clamp(0, 1).movedim(1, -1)
    assert (out - reference).abs().max() < 1e-5
    if scale == 2.0:   # 2x from a 4x model is an antialiased reduction: close to a 2x2 box average of its output
        box = torch.nn.functional.avg_pool2d(native.movedim(-1, 1), 2).movedim(1, -1)
        assert (out - box).abs().mean() < 2 * ONE_LEVEL


def test_x2plus_native_on_odd_sizes():
    model = load_release("RealESRGAN_x2plus.pth", num_blocks=1)
    out = upscale_frames(frames(2, 33, 45), model, scale=0, tile=24, overlap=16, temporal_stabilize=False)
    assert out.shape == (2, 66, 90, 3)
    assert 0.2 < out.mean() < 0.8 and out.std() > 0.05


def test_stabilisation_is_applied_to_the_resized_output():
    model = load_release("realesr-animevideov3.pth", num_conv=4)
    # A still clip with decoder-like noise (+-1 level): the model's invented detail varies from frame to frame.
    images = (frames(1, 20, 24) + ONE_LEVEL * torch.randn(4, 20, 24, 3, generator=torch.Generator().manual_seed(3)))
    images = images.clamp(0, 1)
    plain = upscale_frames(images, model, scale=2, temporal_stabilize=False)
    stable = upscale_frames(images, model, scale=2, temporal_stabilize=True)
    expected = stabilize(images.movedim(-1, 1), plain.movedim(-1, 1)).movedim(1, -1)
    assert (stable - expected).abs().max() < 1e-6
    assert (stable - plain).abs().max() > 1e-3


def rewrapped(model: ImageModelDescriptor, **changes) -> ImageModelDescriptor:
    """The same network described differently (as spandrel would describe another family)."""
    fields = dict(purpose=model.purpose, tags=model.tags, supports_half=True, supports_bfloat16=True,
                  scale=model.scale, input_channels=3, output_channels=3, tiling=model.tiling,
                  size_requirements=model.size_requirements)
    fields.update(changes)
    return ImageModelDescriptor(model.model, model.model.state_dict(), model.architecture, **fields)


def test_a_model_that_tiles_itself_gets_whole_frames():
    """Even where the frame is not a multiple of the model's alignment (41 px, multiple of 4)."""
    model = rewrapped(load_release("realesr-animevideov3.pth", num_conv=2), tiling=ModelTiling.INTERNAL,
                      size_requirements=SizeRequirements(multiple_of=4))
    progress = []
    out = upscale_frames(frames(3, 37, 41), model, tile=16, overlap=8, temporal_stabilize=False,
                         on_progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (3, 3)
    assert out.shape == (3, 37 * 4, 41 * 4, 3)


@pytest.mark.parametrize("bad,message", [
    (object(), r"is a object, not a single-image upscale model"),
    (torch.nn.Conv2d(3, 3, 3), r"is a Conv2d, not a single-image upscale model.*RealESRGAN_x2plus\.pth"),
])
def test_non_image_models_are_refused_with_what_to_use(bad, message):
    with pytest.raises(UpscaleModelError, match=message):
        upscale_frames(frames(1, 8, 8), bad)


def test_grayscale_and_face_models_are_refused():
    gray = load_release("realesr-animevideov3.pth", num_conv=1, channels=1)
    assert gray.input_channels == 1
    with pytest.raises(UpscaleModelError, match=r"RealESRGAN Compact model for 1-channel input and 1-channel output"):
        check_upscale_model(gray, "model 'gray.pth'")
    face = rewrapped(load_release("realesr-animevideov3.pth", num_conv=1), purpose="FaceSR")
    with pytest.raises(UpscaleModelError, match=r"face restoration model"):
        check_upscale_model(face)


@pytest.mark.parametrize("shape", [(1, 16, 16, 4), (16, 16, 3), (0, 16, 16, 3)])
def test_frames_that_are_not_rgb_image_batches_are_refused(shape):
    with pytest.raises(UpscaleModelError, match=r"expected IMAGE frames shaped \(frames, height, width, 3\)"):
        upscale_frames(torch.rand(shape), load_release("realesr-animevideov3.pth", num_conv=1))


def test_describe_names_the_family():
    assert model_summary(load_release("RealESRGAN_x4plus_anime_6B.pth")) == "RRDBNet, 4x, 64nf 6nb"
    assert model_summary(load_release("realesr-animevideov3.pth")) == "SRVGGNetCompact, 4x, 64nf 16nc"


def load_error(path) -> BaseException:
    """What reading the file as ComfyUI does (torch.load, weights only) raises."""
    try:
        torch.load(path, weights_only=True)
    except Exception as error:
        return error
    raise AssertionError(f"{path} loaded")


def test_an_empty_file_is_named_and_called_empty(tmp_path):
    path = tmp_path / "RealESRGAN_x4plus.pth"
    path.write_bytes(b"")
    error = unreadable_file(path.name, load_error(path), 0)
    assert str(error) == ("'RealESRGAN_x4plus.pth' is empty (0 bytes): its download or copy did not finish. "
                          "Download it again, e.g. RealESRGAN_x2plus.pth, RealESRGAN_x4plus.pth or "
                          "realesr-animevideov3.pth.")


def test_a_refused_pickle_gives_the_advice_and_never_suggests_unsafe_loading(tmp_path):
    import argparse
    path = tmp_path / "train_state.pth"
    torch.save({"params": release_state_dict("realesr-animevideov3.pth", num_conv=1)["params"],
                "opt": argparse.Namespace(lr=1e-4)}, path)
    cause = load_error(path)
    assert "weights_only" in str(cause)        # torch's own text does suggest it
    message = str(unreadable_file(path.name, cause, path.stat().st_size))
    assert message.startswith("'train_state.pth' holds Python objects besides weights (argparse.Namespace), which "
                              "ComfyUI does not unpickle")
    assert "weights_only" not in message and "False" not in message
    assert "Comfy-Org/Real-ESRGAN_repackaged" in message


def test_a_truncated_file_is_named_with_its_size(tmp_path):
    path = tmp_path / "realesr-animevideov3.pth"
    torch.save(release_state_dict("realesr-animevideov3.pth", num_conv=1), path)
    path.write_bytes(path.read_bytes()[:1000])
    message = str(unreadable_file(path.name, load_error(path), 1000))
    assert message.startswith("'realesr-animevideov3.pth' (1000 bytes) could not be read as a model file: ")
    assert message.endswith("It may be truncated or not a .pth/.safetensors model; download it again, e.g. "
                            "RealESRGAN_x2plus.pth, RealESRGAN_x4plus.pth or realesr-animevideov3.pth.")
