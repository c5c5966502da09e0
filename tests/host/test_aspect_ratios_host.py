"""Host tier: t2v and v2v at the aspect ratios of 512x768, 768x512, 384x768 and 768x384 (2:3, 3:2, 1:2, 2:1), with
a 64 px short side (random weights on CPU; the pack refuses frames under 64 px): every frame comes out at the asked
size, finite and not flat."""
from __future__ import annotations

import av
import pytest
import torch

from dev.harness.listener import saved_latent
from tests.host.conftest import add_save_latent, load_api, nodes_of, small
from tests.host.test_v2v_host import put_input, saved_videos, v2v_graph

SIZES = [(64, 96), (96, 64), (64, 128), (128, 64)]   # (width, height), the ratios of 512x768 768x512 384x768 768x384
FRAMES = 8


@pytest.mark.parametrize("width,height", SIZES)
def test_t2v_aspect_ratio(server, width, height):
    api = small(load_api("t2v_lightning"), 64, FRAMES)
    latent = nodes_of(api, "EmptyLatentImage")[0]
    api[latent]["inputs"].update(width=width, height=height)
    save = add_save_latent(api, [nodes_of(api, "ADLightning_Sampler")[0], 0], prefix="test/aspect")
    out = saved_latent(server, server.run(api), save)
    assert out.shape == (FRAMES, 4, height // 8, width // 8)
    assert torch.isfinite(out).all() and out.std() > 0.1


@pytest.mark.parametrize("width,height", SIZES)
def test_v2v_aspect_ratio(server, width, height):
    name = f"aspect_{width}x{height}.mp4"
    put_input(server, name, FRAMES, width=width, height=height)
    api, _, sampled = v2v_graph(name, every_nth=1, max_side=max(width, height))
    entry = server.run(api)
    assert saved_latent(server, entry, sampled).shape == (FRAMES, 4, height // 8, width // 8)
    (path,) = saved_videos(server, entry)
    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        assert (stream.width, stream.height) == (width, height)
        assert sum(1 for _ in clip.decode(stream)) == FRAMES
