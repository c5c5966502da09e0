"""Host tier: VAE Decode (long clips) gives core VAE Decode's pictures while decoding a few frames at a time."""
import numpy as np
from PIL import Image

from dev.harness.graphs import drop_saves
from tests.host.conftest import load_api, nodes_of, small


def test_sliced_decode_matches_core_decode(server):
    # 10 frames in slices of 4 (4 + 4 + 2: a short last slice), one sampler step to get varied latents cheaply.
    api = small(load_api("t2v_long_64"), 64, 10)
    sampler = nodes_of(api, "ADLightning_Sampler")[0]
    api[sampler]["inputs"]["steps"] = 1
    sliced = nodes_of(api, "ADLightning_DecodeFrames")[0]
    api[sliced]["inputs"]["frames_per_batch"] = 4
    drop_saves(api)
    api["50"] = {"class_type": "VAEDecode", "inputs": dict(api[sliced]["inputs"])}
    del api["50"]["inputs"]["frames_per_batch"]
    api["51"] = {"class_type": "SaveImage", "inputs": {"images": [sliced, 0], "filename_prefix": "test/sliced"}}
    api["52"] = {"class_type": "SaveImage", "inputs": {"images": ["50", 0], "filename_prefix": "test/core"}}
    entry = server.run(api)
    frames = {}
    for node in ("51", "52"):
        files = server.output_files({"outputs": {node: entry["outputs"][node]}})
        frames[node] = np.stack([np.asarray(Image.open(f), dtype=np.int16) for f in sorted(files)])
    assert frames["51"].shape == frames["52"].shape == (10, 64, 64, 3)
    assert frames["51"].std() > 1   # not a blank clip
    assert np.abs(frames["51"] - frames["52"]).max() <= 1   # 8-bit rounding of float results from other batch sizes
