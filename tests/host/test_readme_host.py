"""Host tier: the README's commands run as written. The quick start's client command queues t2v_lightning on the
session's ComfyUI (started with `python main.py`, as the README says) from a folder laid out as the README assumes
(ComfyUI/custom_nodes/ComfyUI-AnimateDiff-Lightning), and saves the clip into --out. Only the server's address is
added and the size made small enough for a CPU. (The test command is what CI runs, .ci/run.)"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

from tests.host.conftest import REPO

README = (REPO / "README.md").read_text()


def readme_command(starts: str) -> list[str]:
    """The README's shell command that starts with `starts` (continuation lines joined), as argv."""
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith(starts):
                return shlex.split(line)
    raise AssertionError(f"README has no command starting {starts!r}")


def test_the_quick_start_client_command_saves_a_clip(server, tmp_path):
    argv = readme_command("python ComfyUI/custom_nodes/")
    assert argv[1] == "ComfyUI/custom_nodes/ComfyUI-AnimateDiff-Lightning/tools/client.py", argv
    (tmp_path / "ComfyUI").symlink_to(server.base)   # the harness's ComfyUI folder holds the pack under that name
    size = argv.index("--size")
    argv[size + 1] = "64x64"                          # the README's 512x512 takes many minutes on a CPU
    run = subprocess.run([sys.executable, *argv[1:], "--server", server.url.removeprefix("http://"), "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr
    [saved] = run.stdout.split()
    out = argv[argv.index("--out") + 1]
    assert saved.startswith(out.rstrip("/") + "/") and saved.endswith(".mp4")
    assert (tmp_path / saved).stat().st_size > 1000


def test_the_readme_starts_comfyui_as_the_harness_does():
    assert readme_command("python main.py") == ["python", "main.py"]
    assert "main.py" in (REPO / "dev" / "harness" / "comfy_server.py").read_text()
