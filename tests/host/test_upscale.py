"""Host tier: the t2v -> upscale -> save workflow, and the upscale node fed by both loaders, in a real ComfyUI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dev.harness.comfy_server import PromptFailed
from dev.harness.graphs import read_video
from tests.host.conftest import comfy_path, load_api, nodes_of, small


def test_t2v_upscale_workflow_doubles_every_frame(server):
    api = small(load_api("t2v_upscale"), size=64, frames=16)
    [upscale] = nodes_of(api, "ADLightning_UpscaleFrames")
    assert api[upscale]["inputs"]["scale"] == 2.0 and api[upscale]["inputs"]["temporal_stabilize"] is True
    [create] = nodes_of(api, "CreateVideo")
    files = server.output_files(server.run(api))
    assert len(files) == 1 and files[0].suffix == ".mp4", files
    frames, fps = read_video(files[0])
    assert frames.shape == (16, 128, 128, 3)
    assert fps == api[create]["inputs"]["fps"]
    assert np.std(frames.astype(np.float32)) > 1.0      # an image, not a blank


def image_graph(loader: dict, upscale: dict, width: int = 40, height: int = 24, frames: int = 3) -> dict:
    """EmptyImage -> loader -> Upscale Frames -> SaveImage (one PNG a frame; an animated WEBP would merge the
    identical frames): the node without a diffusion run in front."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": frames, "color": 0x3070B0}},
        "2": loader,
        "3": {"class_type": "ADLightning_UpscaleFrames",
              "inputs": {"images": ["1", 0], "upscale_model": ["2", 0], "scale": 2.0, "temporal_stabilize": True,
                         "tile": 512, "overlap": 32, **upscale}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "test/upscale"}},
    }


def core_loader(name: str) -> dict:
    return {"class_type": "UpscaleModelLoader", "inputs": {"model_name": name}}


def our_loader(name: str) -> dict:
    return {"class_type": "ADLightning_LoadUpscaleModel", "inputs": {"model_name": name}}


@pytest.mark.parametrize("loader,upscale,size", [
    (our_loader("RealESRGAN_x4plus.pth"), {"scale": 2.0}, (48, 80)),            # 2x out of a 4x model
    (core_loader("realesr-animevideov3.pth"), {"scale": 0.0, "temporal_stabilize": False}, (96, 160)),  # native
    (core_loader("RealESRGAN_x2plus.pth"), {"scale": 1.5, "tile": 64, "overlap": 16}, (36, 60)),
])
def test_upscale_node_sizes(server, loader, upscale, size):
    files = server.output_files(server.run(image_graph(loader, upscale)))
    assert len(files) == 3
    for file in files:
        with Image.open(file) as image:
            assert image.size == (size[1], size[0])


def test_our_loader_reports_the_family(server):
    entry = server.run(image_graph(our_loader("RealESRGAN_x4plus.pth"), {}))
    assert entry["outputs"]["2"]["text"] == ["RRDBNet, 4x, 64nf 23nb"]


@pytest.mark.parametrize("loader,message", [
    (our_loader("not-an-upscaler.pth"), "'not-an-upscaler.pth' is not a model architecture spandrel knows"),
    (our_loader("gray-x4.pth"), "'gray-x4.pth' is a RealESRGAN Compact model for 1-channel input"),
    (core_loader("gray-x4.pth"), "the upscale model is a RealESRGAN Compact model for 1-channel input"),
    (our_loader("empty.pth"), "'empty.pth' is empty (0 bytes): its download or copy did not finish."),
    (our_loader("train-state.pth"), "'train-state.pth' holds Python objects besides weights (argparse.Namespace), "
                                    "which ComfyUI does not unpickle"),
])
def test_unusable_models_fail_with_a_clear_message(server, loader, message):
    with pytest.raises(PromptFailed) as failure:
        server.run(image_graph(loader, {}))
    [error] = [m[1] for m in failure.value.detail["status"]["messages"] if m[0] == "execution_error"]
    assert error["exception_message"].startswith(message), error["exception_message"]   # the pack's advice first
    assert "weights_only" not in str(failure.value)       # never the advice to load a pickle unsafely


def test_our_loader_gives_cores_model(server):
    """The pack's loader is core's Load Upscale Model plus checks: the same file upscales to the same pixels."""
    ours, core = (image_graph(loader("realesr-animevideov3.pth"), {"temporal_stabilize": False})
                  for loader in (our_loader, core_loader))
    pictures = []
    for graph in (ours, core):
        graph["1"]["inputs"]["color"] = 0x30A0F0
        files = server.output_files(server.run(graph))
        pictures.append([np.asarray(Image.open(f)) for f in sorted(files)])
    assert len(pictures[0]) == 3 and all(np.array_equal(a, b) for a, b in zip(*pictures))
