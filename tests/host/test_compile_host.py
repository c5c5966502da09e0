"""Core's TorchCompileModel works on the patched UNet: torch.compile traces ComfyUI's UNet with the pack's temporal
modules inserted as one graph (no break per module), and the compiled model computes the eager numbers.

In-process on ComfyUI's model classes (tests/host/compile_probe.py, a subprocess with COMFYUI_PATH importable); the
inductor speed-up itself is measured on a GPU with `dev/benchmarks/e2e.py --compile`.
"""
import json
import os
import subprocess
import sys

from dev.harness.comfy_server import server_env
from tests.host.conftest import REPO, comfy_path


def test_patched_unet_compiles_as_one_graph():
    comfy = comfy_path()
    env = server_env(sys.executable)   # with the torchaudio stand-in where it is asked for and needed (0.30)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (comfy, env.get("PYTHONPATH")) if p)
    run = subprocess.run([sys.executable, str(REPO / "tests" / "host" / "compile_probe.py")], cwd=comfy, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["temporal_modules"] == 21
    assert (result["graphs"], result["breaks"]) == (1, 0), result["where"]
    assert result["max_difference"] < 1e-5
