"""Host tier: with context windows on, each window's ControlNet is guided by that window's hint frames, for a
ControlNet chained behind another one too (nodes/controlnet_windows.py; also its canary on core's ControlNet).

The hint's frames encode their index (frame i is the grey level 4*i + offset), and a random-weight full-size SD1.5
ControlNet in lllyasviel's layout (dev/harness/make_controlnet.py, read by core's ControlNetLoader) guides a 40-frame clip
in static windows [0-15], [12-27], [24-39], sampled in ONE step, so each frame's output depends only on the windows
that hold it. Changing hint frames that only window k holds must then change the frames of window k and leave every
frame outside window k bit-identical. Core alone gives every window hint frames 0..15: changing frames 36-39 would
change nothing, and changing frames 0-3 would change every window.
"""
from __future__ import annotations

import pytest
import torch

from dev.harness.models import CONTROLNET_NAME
from dev.harness.listener import saved_latent
from adlightning.samplers import windows as win
from tests.host.conftest import add_save_latent, load_api, nodes_of, small

FRAMES = 40
OPTIONS = win.WindowOptions(length=16, overlap=4, schedule="static", fuse="overlap-linear", noise="plain")


def grey(level: int) -> int:
    return level * 0x010101


def add_node(api: dict, class_type: str, **inputs) -> str:
    node = str(max(int(k) for k in api if k.isdigit()) + 1)
    api[node] = {"class_type": class_type, "inputs": inputs}
    return node


def index_hint(api: dict, offset: int, changed: range = range(0)) -> list:
    """An IMAGE of FRAMES 64 px frames, frame i grey 4*i + offset (or white for i in `changed`), built from core's
    EmptyImage and ImageBatch nodes."""
    out = None
    for i in range(FRAMES):
        level = 255 if i in changed else 4 * i + offset
        frame = [add_node(api, "EmptyImage", width=64, height=64, batch_size=1, color=grey(level)), 0]
        out = frame if out is None else [add_node(api, "ImageBatch", image1=out, image2=frame), 0]
    return out


def graph(changed_first: range = range(0), changed_second: range = range(0)) -> tuple[dict, str]:
    """The shipped windowed t2v graph at 64 px, one step, static windows, two chained ControlNets: the first one
    applied (the second's previous_controlnet) gets hint A, the second hint B."""
    api = small(load_api("t2v_long_64"), 64, FRAMES)
    sampler = nodes_of(api, "ADLightning_Sampler")[0]
    api[sampler]["inputs"]["steps"] = 1
    api[nodes_of(api, "ADLightning_ContextOptions")[0]]["inputs"].update(
        context_length=OPTIONS.length, context_overlap=OPTIONS.overlap, schedule=OPTIONS.schedule,
        mode=win.WHOLE_UNET)   # per-window hints are the whole-UNet mode's (test_motion_windows_host.py: the other)
    cnet = add_node(api, "ControlNetLoader", control_net_name=CONTROLNET_NAME)
    positive, negative = api[sampler]["inputs"]["positive"], api[sampler]["inputs"]["negative"]
    for hint in (index_hint(api, 10, changed_first), index_hint(api, 60, changed_second)):
        apply = add_node(api, "ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=[cnet, 0],
                         image=hint, strength=1.0, start_percent=0.0, end_percent=1.0)
        positive, negative = [apply, 0], [apply, 1]
    api[sampler]["inputs"].update(positive=positive, negative=negative)
    return api, add_save_latent(api, [sampler, 0], prefix="test/cnet_windows")


def sample(server, **changes) -> torch.Tensor:
    api, save = graph(**changes)
    return saved_latent(server, server.run(api), save)


@pytest.fixture(scope="module")
def base(server):
    return sample(server)


def frames_changed(a: torch.Tensor, b: torch.Tensor) -> list[int]:
    return [i for i in range(FRAMES) if not torch.equal(a[i], b[i])]


def test_windows_are_the_expected_ones():
    assert win.windows(FRAMES, OPTIONS, 0) == [list(range(0, 16)), list(range(12, 28)), list(range(24, 40))]


def test_last_windows_hint_reaches_only_the_last_window(server, base):
    # Frames 36-39 are in window 2 only. Changed in the FIRST applied ControlNet (the chained, previous one).
    out = sample(server, changed_first=range(36, 40))
    assert torch.isfinite(out).all() and base.std() > 0
    assert frames_changed(base, out) == list(range(24, 40))


def test_first_windows_hint_reaches_only_the_first_window(server, base):
    # Frames 0-3 are in window 0 only. Changed in the second ControlNet (the one the conds hold).
    out = sample(server, changed_second=range(0, 4))
    assert frames_changed(base, out) == list(range(0, 16))


def test_hints_are_restored_after_sampling(server, base):
    # The CONDITIONING (and its ControlNet objects) outlives a sampler run: a second sampler fed the same
    # CONDITIONING in the same prompt must see the full hints again, and so sample exactly what the first did.
    api, save = graph()
    sampler = nodes_of(api, "ADLightning_Sampler")[0]
    twin = add_node(api, "ADLightning_Sampler", **api[sampler]["inputs"])
    save_twin = add_save_latent(api, [twin, 0], prefix="test/cnet_windows_twin")
    entry = server.run(api)
    assert torch.equal(saved_latent(server, entry, save), base)
    assert torch.equal(saved_latent(server, entry, save_twin), base)
