"""Host tier: tools/client.py against a real ComfyUI: whole runs with progress and the output downloaded (20 in a
row, as the race with the history showed itself in 4 of 11), the overrides in the queued prompt and in the clip, a
workflow ComfyUI rejects reported per node and input, and a file the server lacks refused before queueing."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import av
from PIL import Image   # ComfyUI's own dependency, present wherever the host tier runs

from dev.node_defs import REPO

CLIENT = REPO / "tools" / "client.py"
CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"


def run_client(server, *args, workflow="t2v_lightning", cwd=None, timeout=600):
    host = server.url.removeprefix("http://")
    return subprocess.run([sys.executable, str(CLIENT), "queue", workflow, "--server", host, *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def queued_prompt(server, stderr: str) -> dict:
    """The prompt as ComfyUI ran it (its history entry), from the id the client logged."""
    prompt_id = re.search(r"queued ([\w-]+) on", stderr).group(1)
    return server.get(f"/history/{prompt_id}")[prompt_id]["prompt"][2]


def test_client_runs_a_workflow_end_to_end(server, tmp_path):
    run = run_client(server, "--size", "64", "--frames", "8", "--seed", "5", "--prompt", "a red fox in snow",
                     "--format", "webp", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    saved = run.stdout.split()
    assert len(saved) == 1 and saved[0].endswith(".webp"), run.stdout   # --format webp swapped the MP4 save
    with Image.open(saved[0]) as clip:
        assert (clip.n_frames, clip.size) == (8, (64, 64)), "not the 8-frame 64 px clip as an animated WEBP"
    assert saved[0].startswith(str(tmp_path))
    assert "Lightning Sampler: 4/4" in run.stderr, run.stderr   # websocket progress, 4 steps for the 4-step file


def test_twenty_runs_in_a_row_all_save_their_clip(server, tmp_path):
    """From another directory, by workflow name: each run exits 0 and its file is there (the history race)."""
    seconds = []
    for i in range(20):
        start = time.monotonic()
        run = run_client(server, "--size", "64", "--frames", "4", "--seed", str(i), "--quiet", "--out", "clips",
                         cwd=tmp_path)
        seconds.append(time.monotonic() - start)
        assert run.returncode == 0, f"run {i}: {run.stderr}"
        saved = run.stdout.split()
        assert len(saved) == 1 and (tmp_path / saved[0]).stat().st_size > 0, f"run {i}: {run.stdout}"
    assert len(list((tmp_path / "clips").rglob("*.*"))) == 20
    print(f"20 client runs: {sum(seconds):.0f} s, {min(seconds):.1f}-{max(seconds):.1f} s each")


def test_overrides_reach_the_graph_and_the_clip(server, tmp_path):
    run = run_client(server, "--size", "64", "--frames", "6", "--ckpt", CHECKPOINT, "--cfg", "1.5", "--fps", "12",
                     "--motion-module", "animatediff_lightning_8step_comfyui.safetensors", "--format", "mp4",
                     "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    prompt = queued_prompt(server, run.stderr)
    by_type = {node["class_type"]: node["inputs"] for node in prompt.values()}
    assert by_type["CheckpointLoaderSimple"]["ckpt_name"] == CHECKPOINT
    assert by_type["ADLightning_LoadMotionModule"]["model_name"] == "animatediff_lightning_8step_comfyui.safetensors"
    assert by_type["ADLightning_Sampler"]["cfg"] == 1.5 and by_type["ADLightning_Sampler"]["steps"] == 0
    assert by_type["CreateVideo"]["fps"] == 12 and by_type["SaveVideo"]["format"] == "mp4"
    assert "SaveAnimatedWEBP" not in by_type
    assert "Lightning Sampler: 8/8" in run.stderr, "steps follow the 8-step file"
    [saved] = run.stdout.split()
    assert saved.endswith(".mp4")
    with av.open(saved) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (frames, float(stream.average_rate), stream.codec_context.name) == (6, 12.0, "h264")


def test_client_prints_node_errors(server, tmp_path):
    run = run_client(server, "--steps", "1000", "--out", str(tmp_path))
    assert run.returncode == 1
    assert "ComfyUI rejected the workflow" in run.stderr
    assert "node 7 (Lightning Sampler), input 'steps': Value 1000 bigger than max of 100" in run.stderr, run.stderr
    assert run.stdout == ""


def test_missing_checkpoint_exits_1_before_queueing_with_the_names_there_are(server, tmp_path):
    history, queue = len(server.get("/history")), server.get("/queue")
    run = run_client(server, "--ckpt", "my_model.safetensors", "--out", str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "error: ComfyUI would reject the workflow (nothing queued):",
        f"  node 1 (Load Checkpoint (any SD1.5)), input 'ckpt_name': 'my_model.safetensors' is not on the server; "
        f"available: {CHECKPOINT}"]
    assert (len(server.get("/history")), server.get("/queue")) == (history, queue), "something was queued"
    assert run.stdout == ""
