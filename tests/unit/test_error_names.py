"""The pack's error types read as their own names, like ValueError: ComfyUI (execution.full_type_name) and Python's
traceback prefix any other module, and inside ComfyUI the module is the pack's folder path. The host tier sees the
name in a real execution_error (tests/host/test_windows_host.py)."""
import traceback

import pytest

from adlightning.motion.module import MotionModuleError
from adlightning.samplers.windows import ContextWindowError
from adlightning.upscaling.upscale_models import UpscaleModelError


@pytest.mark.parametrize("error", [MotionModuleError, ContextWindowError, UpscaleModelError])
def test_error_type_is_shown_without_a_module_path(error):
    message = "'x.safetensors' is not a motion module. Choose another file."
    assert issubclass(error, ValueError)
    assert traceback.format_exception_only(error(message)) == [f"{error.__name__}: {message}\n"]
    with pytest.raises(error, match="not a motion module"):   # still caught by its own class
        raise error(message)
