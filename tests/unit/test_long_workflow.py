"""The shipped 64-frame workflow (API twin) uses the measured window defaults and really asks for 64 frames."""
import json
from pathlib import Path

from samplers.windows import WindowOptions

API = json.loads((Path(__file__).resolve().parents[2] / "workflows" / "api" / "t2v_long_64.json").read_text())


def node(class_type):
    (key,) = [k for k, v in API.items() if v["class_type"] == class_type]
    return key, API[key]["inputs"]


def test_context_options_are_the_defaults_and_reach_the_sampler():
    key, inputs = node("ADLightning_ContextOptions")
    assert WindowOptions(length=inputs["context_length"], overlap=inputs["context_overlap"],
                         schedule=inputs["schedule"], fuse=inputs["fuse_method"], noise=inputs["noise"]) == \
        WindowOptions()
    assert node("ADLightning_Sampler")[1]["context_options"] == [key, 0]


def test_64_frames_past_the_position_table():
    assert node("EmptyLatentImage")[1]["batch_size"] == 64
