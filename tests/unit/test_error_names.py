"""The pack's error types read as their own names, like ValueError: ComfyUI (execution.full_type_name) and Python's
traceback prefix any other module, and inside ComfyUI the module of the pack's code is its folder path
("/.../custom_nodes/<pack>.samplers.prompt_schedule.ScheduleError"). The host tier sees the name in a real
execution_error (tests/host/test_prompt_travel_host.py)."""
import ast
import traceback
from pathlib import Path

import pytest

from adlightning.motion.module import MotionModuleError
from adlightning.samplers.prompt_schedule import ScheduleError
from adlightning.samplers.windows import ContextWindowError
from adlightning.upscaling.upscale_models import UpscaleModelError

REPO = Path(__file__).resolve().parents[2]
# The folders ComfyUI runs (nodes/ and the math under it); tools/, dev/ and study/ never run inside ComfyUI.
IN_COMFYUI = ("nodes", "motion", "samplers", "frames", "upscaling", "metrics")


@pytest.mark.parametrize("error", [MotionModuleError, ContextWindowError, UpscaleModelError, ScheduleError])
def test_error_type_is_shown_without_a_module_path(error):
    message = "'x.safetensors' is not a motion module. Choose another file."
    assert issubclass(error, ValueError)
    assert traceback.format_exception_only(error(message)) == [f"{error.__name__}: {message}\n"]
    with pytest.raises(error, match="not a motion module"):   # still caught by its own class
        raise error(message)


def test_every_error_class_the_pack_raises_in_comfyui_has_a_short_name():
    """Every class in the folders ComfyUI runs whose name ends in Error sets __module__ = "builtins" in its body."""
    missing, found = [], 0
    for folder in IN_COMFYUI:
        for path in sorted((REPO / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                    found += 1
                    sets = any(isinstance(s, ast.Assign) and any(getattr(t, "id", None) == "__module__"
                                                                 for t in s.targets) for s in node.body)
                    if not sets:
                        missing.append(f"{path.relative_to(REPO)}: {node.name}")
    assert found >= 10 and not missing, missing
