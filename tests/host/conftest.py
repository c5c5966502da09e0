"""Host tier: tests that run the shipped workflows inside a real ComfyUI (COMFYUI_PATH).

Without COMFYUI_PATH every test here is skipped with that reason (pytest -rs prints it). One ComfyUI server serves the
whole session; it runs with --cache-none so an identical prompt is really executed again (determinism, isolation).
Fixture model files are random-weight, full-size, made once and cached outside the repo (see dev/harness/).
"""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest

from dev.harness.comfy_server import REPO, ComfyServer, torchaudio_stand_in  # noqa: F401 (tests import REPO)
from dev.harness.graphs import add_save_latent, load_api, nodes_of, read_latents, small  # noqa: F401 (likewise)
from dev.harness.models import model_files as _model_files
from dev.harness.motion_files import cache_dir


def comfy_path() -> str:
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("COMFYUI_PATH is not set: host tier (real ComfyUI) not run. See README, 'Testing'.")
    if not (Path(path) / "main.py").is_file():
        pytest.fail(f"COMFYUI_PATH={path} has no main.py; point it at a ComfyUI checkout")
    return path


def import_comfy_in_process() -> str:
    """Make ComfyUI's modules importable in the test process (canaries that need no server) and return its path:
    ComfyUI goes after the repo on sys.path (the repo root holds tests/, which ComfyUI has too), the torchaudio
    stand-in too where torchaudio does not import (0.30's latent_preview -> comfy.sd imports it; harness
    comfy_server.torchaudio_stand_in), and ComfyUI is told it runs on the CPU (model_management probes for a GPU when
    first imported)."""
    path = comfy_path()
    if path not in sys.path:
        sys.path.append(path)
    stub = torchaudio_stand_in(sys.executable)
    if stub and stub not in sys.path:
        sys.path.append(stub)
    import comfy.cli_args
    comfy.cli_args.args.cpu = True
    return path


def model_files() -> dict[str, dict[str, Path]]:
    """Every model file any host test needs (harness.models), made with the ComfyUI tree under test."""
    return _model_files(comfy_path())


@pytest.fixture(scope="session", autouse=True)
def one_host_session_at_a_time():
    """One host-tier session at a time on this machine (each ComfyUI needs ~8 GB and both cores; a session may hold
    its shared server and a module's own at once): the whole session holds an exclusive lock in the fixture cache,
    which benchmarks that start a server take too (e.g. `flock <cache>/host-tier.lock python -m dev.benchmarks...`)."""
    if not os.environ.get("COMFYUI_PATH"):
        yield
        return
    with open(cache_dir() / "host-tier.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def server():
    srv = ComfyServer(comfy_path(), model_files(), extra_args=["--cache-none"])
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
