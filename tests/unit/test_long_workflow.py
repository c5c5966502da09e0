"""The shipped 64-frame workflow (API twin) uses the measured window defaults and asks for the frames its name
promises, more than the motion module's position table holds, so it really needs the windows it brings."""
import json
from pathlib import Path

from adlightning.motion.module import MotionConfig
from adlightning.samplers.windows import WindowOptions, windows

NAME = "t2v_long_64"
API = json.loads((Path(__file__).resolve().parents[2] / "workflows" / "api" / f"{NAME}.json").read_text())


def node(class_type):
    (key,) = [k for k, v in API.items() if v["class_type"] == class_type]
    return key, API[key]["inputs"]


def test_context_options_are_the_defaults_and_reach_the_sampler():
    key, inputs = node("ADLightning_ContextOptions")
    assert WindowOptions(length=inputs["context_length"], overlap=inputs["context_overlap"],
                         schedule=inputs["schedule"], fuse=inputs["fuse_method"], noise=inputs["noise"]) == \
        WindowOptions()
    assert node("ADLightning_Sampler")[1]["context_options"] == [key, 0]


def test_the_clip_is_as_long_as_its_name_says_and_past_the_position_table():
    frames = node("EmptyLatentImage")[1]["batch_size"]
    assert frames == int(NAME.rsplit("_", 1)[1])
    # Lightning's position table (a v2 module's, the MotionConfig default): without windows the sampler refuses it.
    assert frames > MotionConfig().pe_length
    inputs = node("ADLightning_ContextOptions")[1]
    options = WindowOptions(length=inputs["context_length"], overlap=inputs["context_overlap"],
                            schedule=inputs["schedule"], fuse=inputs["fuse_method"], noise=inputs["noise"])
    for step in range(4):   # Lightning's 4 steps: every frame is in a window, and no window is longer than the table
        layout = windows(frames, options, step)
        assert set().union(*layout) == set(range(frames)) and len(layout) > 1
        assert max(len(w) for w in layout) <= MotionConfig().pe_length
