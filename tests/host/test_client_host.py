"""Host tier: workflows/client.py against a real ComfyUI: a whole run with progress and the output downloaded, and a
workflow ComfyUI rejects reported per node and input."""
from __future__ import annotations

import subprocess
import sys

from harness.graphs import read_video
from tools.node_defs import REPO

CLIENT = REPO / "workflows" / "client.py"
T2V = REPO / "workflows" / "api" / "t2v_lightning.json"


def run_client(server, *args, timeout=600):
    host = server.url.removeprefix("http://")
    return subprocess.run([sys.executable, str(CLIENT), "queue", str(T2V), "--server", host, *args],
                          capture_output=True, text=True, timeout=timeout)


def test_client_runs_a_workflow_end_to_end(server, tmp_path):
    run = run_client(server, "--size", "64", "--frames", "8", "--seed", "5", "--prompt", "a red fox in snow",
                     "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    saved = run.stdout.split()
    assert len(saved) == 1 and saved[0].endswith(".mp4"), run.stdout
    frames, _ = read_video(saved[0])
    assert frames.shape == (8, 64, 64, 3), "not the 8-frame 64 px clip as an MP4"
    assert saved[0].startswith(str(tmp_path))
    assert "Lightning Sampler: 4/4" in run.stderr, run.stderr   # websocket progress, 4 steps for the 4-step file


def test_client_prints_node_errors(server, tmp_path):
    run = run_client(server, "--steps", "1000", "--out", str(tmp_path))
    assert run.returncode == 1
    assert "ComfyUI rejected the workflow" in run.stderr
    assert "node 7 (Lightning Sampler), input 'steps': Value 1000 bigger than max of 100" in run.stderr, run.stderr
    assert run.stdout == ""
