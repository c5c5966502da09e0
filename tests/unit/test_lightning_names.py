"""motion/formats.py's file-name rule against the golden list that js/lib/lightning_steps.js is also tested on."""
import json

from adlightning.motion.formats import lightning_steps_from_name
from dev.node_defs import REPO

GOLDEN = json.loads((REPO / "tests" / "fixtures" / "lightning_step_names.json").read_text())["cases"]


def test_golden_names_agree_with_python():
    wrong = [(name, steps, lightning_steps_from_name(name)) for name, steps in GOLDEN
             if lightning_steps_from_name(name) != steps]
    assert not wrong, f"(name, golden, python): {wrong}"
    assert {steps for _, steps in GOLDEN} == {1, 2, 4, 8, None}
