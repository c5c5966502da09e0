"""Host tier: keyframe pinning through the real sampler (random weights, 64 px): the i2v, loop and extend workflows
run; i2v's first frame is the input image's plain VAE round trip; the loop's seam (last -> first) and the extend
join are within the clip's own frame-to-frame changes; the second chunk's first K latent frames are the first
chunk's last K; strength 1 keeps the source latent and strength 0 is the unpinned run, bit for bit; a keyframe past
the clip is refused when queued, by name.

Random weights do not make smooth video, so "within the distribution" is checked against the clip's own changes
(min..max of the other neighbouring-frame pairs, metrics/seams.py frame_changes), not against a beauty threshold.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dev.harness.comfy_server import PromptFailed
from dev.harness.graphs import drop_saves
from dev.harness.listener import saved_latent
from adlightning.metrics.seams import frame_changes
from tests.host.conftest import add_save_latent, load_api, nodes_of

IMAGE = "keyframe_test.png"
SIZE = 64


@pytest.fixture(scope="module")
def srv(server):
    """The session server with a 64x64 test picture in its input folder (a lit square on a gradient)."""
    folder = server.base / "input"
    folder.mkdir(exist_ok=True)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([x * 3, y * 3, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    img[20:44, 24:40] = (230, 200, 40)
    Image.fromarray(img).save(folder / IMAGE)
    return server


def save_images(api: dict, source: list, prefix: str) -> str:
    node = str(max(int(k) for k in api if k.isdigit()) + 1)
    api[node] = {"class_type": "SaveImage", "inputs": {"images": source, "filename_prefix": prefix}}
    return node


def images(server, entry: dict, node: str) -> torch.Tensor:
    files = sorted(server.output_files({"outputs": {node: entry["outputs"][node]}}))
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255)
                        for f in files])


def keyframe_graph(name: str, seed: int, keep_video: bool = False) -> dict:
    api = load_api(name)
    for node in nodes_of(api, "LoadImage"):
        api[node]["inputs"]["image"] = IMAGE
    for node in nodes_of(api, "EmptyLatentImage"):
        api[node]["inputs"].update(width=SIZE, height=SIZE)
    for node in nodes_of(api, "ADLightning_Sampler"):
        api[node]["inputs"]["seed"] = seed
    return api if keep_video else drop_saves(api)


def within(changes: torch.Tensor, pair: int) -> tuple[float, float, float]:
    others = torch.cat([changes[:pair], changes[pair + 1:]])
    return float(changes[pair]), float(others.min()), float(others.max())


@pytest.mark.parametrize("name", ["i2v_lightning", "loop_lightning", "extend_lightning"])
def test_workflow_runs_to_a_video(srv, name):
    entry = srv.run(keyframe_graph(name, 20261207, keep_video=True))
    saved = srv.output_files(entry)
    assert saved and all(p.stat().st_size > 0 for p in saved), entry.get("outputs")


def test_i2v_first_frame_is_the_vae_round_trip(srv):
    api = keyframe_graph("i2v_lightning", 71)
    [load], [pin], [sampler], [decode] = (nodes_of(api, t) for t in
                                         ("LoadImage", "ADLightning_PinFrames", "ADLightning_Sampler", "VAEDecode"))
    vae = api[decode]["inputs"]["vae"]
    n = max(int(k) for k in api) + 1
    api[str(n)] = {"class_type": "VAEEncode", "inputs": {"pixels": [load, 0], "vae": vae}}
    api[str(n + 1)] = {"class_type": "VAEDecode", "inputs": {"samples": [str(n), 0], "vae": vae}}
    trip = save_images(api, [str(n + 1), 0], "test/kf_i2v_trip")
    clip = save_images(api, [decode, 0], "test/kf_i2v_clip")
    source = add_save_latent(api, [pin, 0], "test/kf_i2v_source")
    out = add_save_latent(api, [sampler, 0], "test/kf_i2v_out")
    entry = srv.run(api)
    frames, round_trip = images(srv, entry, clip), images(srv, entry, trip)
    assert frames.shape[0] == 16 and round_trip.shape[0] == 1
    assert (frames[0] - round_trip[0]).abs().max() <= 1 / 255 + 1e-6   # PNG levels: the same picture
    assert (frames[1] - round_trip[0]).abs().mean() > 0.01   # the other frames are sampled
    src, got = saved_latent(srv, entry, source), saved_latent(srv, entry, out)
    assert (got[0] - src[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_strength_one_keeps_the_source_through_the_real_sampler(srv, steps):
    api = keyframe_graph("i2v_lightning", 300 + steps)
    [pin], [sampler] = nodes_of(api, "ADLightning_PinFrames"), nodes_of(api, "ADLightning_Sampler")
    api[pin]["inputs"].update(frames=8, positions="first, 50%, last", strengths="1.0, 1.0, 1.0")
    api[sampler]["inputs"]["steps"] = steps
    for node in nodes_of(api, "VAEDecode"):
        del api[node]
    source, out = add_save_latent(api, [pin, 0], "test/kf_s1_src"), add_save_latent(api, [sampler, 0], "test/kf_s1")
    entry = srv.run(api)
    src, got = saved_latent(srv, entry, source), saved_latent(srv, entry, out)
    for index in (0, 4, 7):
        assert (got[index] - src[index]).abs().max() <= 1e-5
    assert (got[1] - src[1]).abs().max() > 1e-2


def test_image_init_at_denoise_below_one_keeps_the_pinned_frame(srv):
    api = keyframe_graph("i2v_lightning", 44)
    [pin], [sampler] = nodes_of(api, "ADLightning_PinFrames"), nodes_of(api, "ADLightning_Sampler")
    api[pin]["inputs"].update(frames=8, init="image")
    api[sampler]["inputs"]["denoise"] = 0.5
    for node in nodes_of(api, "VAEDecode"):
        del api[node]
    source, out = add_save_latent(api, [pin, 0], "test/kf_init_src"), add_save_latent(api, [sampler, 0], "test/kf_in")
    entry = srv.run(api)
    src, got = saved_latent(srv, entry, source), saved_latent(srv, entry, out)
    assert (got[0] - src[0]).abs().max() <= 1e-5
    assert torch.equal(src[3], src[0])   # free frames started from the image


def test_strength_zero_is_the_unpinned_run_bit_for_bit(srv):
    pinned = keyframe_graph("i2v_lightning", 55)
    [pin], [sampler] = nodes_of(pinned, "ADLightning_PinFrames"), nodes_of(pinned, "ADLightning_Sampler")
    pinned[pin]["inputs"].update(frames=8, strengths="0")
    for node in nodes_of(pinned, "VAEDecode"):
        del pinned[node]
    a = add_save_latent(pinned, [sampler, 0], "test/kf_s0_pinned")
    plain = keyframe_graph("t2v_lightning", 55)
    [empty] = nodes_of(plain, "EmptyLatentImage")
    plain[empty]["inputs"]["batch_size"] = 8
    plain[nodes_of(plain, "CLIPTextEncode")[0]]["inputs"]["text"] = pinned["2"]["inputs"]["text"]
    for node in nodes_of(plain, "VAEDecode"):
        del plain[node]
    b = add_save_latent(plain, [nodes_of(plain, "ADLightning_Sampler")[0], 0], "test/kf_s0_plain")
    with_pin = saved_latent(srv, srv.run(pinned), a)
    without = saved_latent(srv, srv.run(plain), b)
    assert torch.equal(with_pin, without)


def test_loop_seam_is_within_the_clips_own_changes(srv):
    api = keyframe_graph("loop_lightning", 88)
    [decode] = nodes_of(api, "VAEDecode")
    clip = save_images(api, [decode, 0], "test/kf_loop")
    frames = images(srv, srv.run(api), clip)
    assert frames.shape[0] == 16
    changes = frame_changes(frames, looped=True)
    seam, low, high = within(changes, len(changes) - 1)
    print(f"loop seam (pinned both ends): {seam:.4f}, inner changes {low:.4f}..{high:.4f}, "
          f"mean {float(changes[:-1].mean()):.4f}, ratio {seam / float(changes[:-1].mean()):.3f}")
    assert low <= seam <= high


def test_loop_seam_measured_against_the_routes(srv):
    """The measurement behind the loop route (docs/keyframes.md): the seam ratio (last -> first change over the mean
    inner change) of the pinned loop, of a plain 16-frame clip, and of a 16-frame clip sampled with looped context
    windows (length 8, overlap 4)."""
    ratios = {}
    for route in ("pinned", "plain", "looped_windows"):
        if route == "pinned":
            api = keyframe_graph("loop_lightning", 90)
        else:
            api = keyframe_graph("t2v_lightning", 90)
            [sampler] = nodes_of(api, "ADLightning_Sampler")
            if route == "looped_windows":
                api["90"] = {"class_type": "ADLightning_ContextOptions",
                             "inputs": {"context_length": 8, "context_overlap": 4, "schedule": "looped",
                                        "fuse_method": "pyramid", "noise": "plain"}}
                api[sampler]["inputs"]["context_options"] = ["90", 0]
        [decode] = nodes_of(api, "VAEDecode")
        node = save_images(api, [decode, 0], f"test/kf_route_{route}")
        changes = frame_changes(images(srv, srv.run(api), node), looped=True)
        ratios[route] = float(changes[-1] / changes[:-1].mean())
    print("loop seam ratios:", {k: round(v, 3) for k, v in ratios.items()})
    assert ratios["pinned"] < ratios["plain"]


def test_extend_pins_the_overlap_and_the_join_is_within_the_clips_changes(srv):
    api = keyframe_graph("extend_lightning", 123)
    samplers = sorted(nodes_of(api, "ADLightning_Sampler"), key=int)
    [extend], [decode] = nodes_of(api, "ADLightning_ExtendVideo"), nodes_of(api, "VAEDecode")
    overlap = api[extend]["inputs"]["overlap"]
    first, second = (add_save_latent(api, [s, 0], f"test/kf_extend_{i}") for i, s in enumerate(samplers))
    clip = save_images(api, [decode, 0], "test/kf_extend_clip")
    entry = srv.run(api)
    one, two = saved_latent(srv, entry, first), saved_latent(srv, entry, second)
    assert one.shape[0] == 16 and two.shape[0] == 16
    assert (two[:overlap] - one[-overlap:]).abs().max() <= 1e-5
    frames = images(srv, entry, clip)
    assert frames.shape[0] == 16 + 16 - overlap
    changes = frame_changes(frames)
    join, low, high = within(changes, 15)   # chunk 1's last frame -> chunk 2's first new frame
    print(f"extend join: {join:.4f}, other changes {low:.4f}..{high:.4f}, "
          f"ratio {join / float(torch.cat([changes[:15], changes[16:]]).mean()):.3f}")
    assert low <= join <= high


def test_keyframe_past_the_clip_is_refused_when_queued(srv):
    api = keyframe_graph("i2v_lightning", 1, keep_video=True)   # a prompt needs an output to be validated
    [pin] = nodes_of(api, "ADLightning_PinFrames")
    api[pin]["inputs"]["positions"] = "first, 20"
    with pytest.raises(PromptFailed, match=r"keyframe 2 \('20'\) is at frame 20, past the clip: the clip has 16 "
                                           r"frames"):
        srv.queue(api)
    api[pin]["inputs"].update(positions="first", frames=0)   # core's own range check still runs for the others
    with pytest.raises(PromptFailed):
        srv.queue(api)


def test_extend_overlap_not_smaller_than_the_chunk_is_refused_when_queued(srv):
    api = keyframe_graph("extend_lightning", 1, keep_video=True)
    [extend] = nodes_of(api, "ADLightning_ExtendVideo")
    api[extend]["inputs"]["overlap"] = 16
    with pytest.raises(PromptFailed, match="overlap 16 leaves no new frames in a chunk of 16 frames"):
        srv.queue(api)
