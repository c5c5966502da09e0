"""tools/client.py without ComfyUI: overrides, name checks, error reports, the websocket framing, an unreachable
server, and whole runs against a fake ComfyUI that writes the history after execution_success (as the real one does)."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from dev.node_defs import REPO
from tools import client

CLIENT = REPO / "tools" / "client.py"
T2V = REPO / "workflows" / "api" / "t2v_lightning.json"


def t2v() -> dict:
    return json.loads(T2V.read_text())


def test_overrides_reach_the_right_inputs():
    api = client.apply_overrides(t2v(), prompt="a fox", negative="rain", seed=7, frames=24, size="320x256", steps=8)
    assert api["2"]["inputs"]["text"] == "a fox"          # positive encoder
    assert api["3"]["inputs"]["text"] == "rain"           # negative encoder
    assert api["7"]["inputs"]["seed"] == 7
    assert api["7"]["inputs"]["steps"] == 8
    assert (api["4"]["inputs"]["width"], api["4"]["inputs"]["height"], api["4"]["inputs"]["batch_size"]) == \
        (320, 256, 24)
    assert t2v()["2"]["inputs"]["text"] != "a fox", "the loaded workflow must not be changed in place"


def test_no_overrides_is_the_workflow_itself():
    assert client.apply_overrides(t2v()) == t2v()


def test_square_size_and_bad_sizes():
    assert client.parse_size("128") == (128, 128)
    for bad in ("100x64", "abc", "32"):
        with pytest.raises(client.ClientError, match="--size"):
            client.parse_size(bad)


def test_override_without_a_target_is_an_error():
    api = {k: v for k, v in t2v().items() if v["class_type"] != "EmptyLatentImage"}
    with pytest.raises(client.ClientError, match="no empty-latent node"):
        client.apply_overrides(api, frames=8)
    with pytest.raises(client.ClientError, match="no node .* seed"):
        client.apply_overrides({"1": {"class_type": "X", "inputs": {}}}, seed=1)


def test_ui_format_file_is_refused(tmp_path):
    ui = REPO / "workflows" / "t2v_lightning.json"
    with pytest.raises(client.ClientError, match="UI-format"):
        client.load_workflow(str(ui))


def test_node_errors_are_printed_per_node_and_input():
    answer = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                        "details": ""},
              "node_errors": {"7": {"class_type": "ADLightning_Sampler", "dependent_outputs": ["9"], "errors": [
                  {"type": "value_bigger_than_max", "message": "Value 1000 bigger than max of 100",
                   "details": "steps", "extra_info": {"input_name": "steps"}}]}}}
    text = client.describe_rejection(t2v(), answer)
    assert text.splitlines() == [
        "ComfyUI rejected the workflow: Prompt outputs failed validation",
        "  node 7 (Lightning Sampler), input 'steps': Value 1000 bigger than max of 100 - steps"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # closed again when the block ends: nothing listens there


def test_closed_port_exits_nonzero_with_one_line():
    port = closed_port()
    run = subprocess.run([sys.executable, str(CLIENT), "queue", str(T2V), "--server", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"error: cannot reach ComfyUI at 127.0.0.1:{port}: Connection refused")


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    if len(payload) < 1 << 16:
        return head + bytes([126]) + struct.pack(">H", len(payload)) + payload
    return head + bytes([127]) + struct.pack(">Q", len(payload)) + payload


def read_client_frame(conn: socket.socket) -> tuple[int, bytes]:
    b0, b1 = conn.recv(2, socket.MSG_WAITALL)
    assert b1 & 0x80, "client frames must be masked"
    length = b1 & 0x7F
    mask = conn.recv(4, socket.MSG_WAITALL)
    data = conn.recv(length, socket.MSG_WAITALL) if length else b""
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def test_websocket_handshake_fragments_ping_and_long_frames():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    big = bytes(range(256)) * 300   # 76,800 bytes: a 64-bit length
    seen = {}

    def serve():
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(1024)
            key = next(l.split(":", 1)[1].strip() for l in head.decode().split("\r\n")
                       if l.lower().startswith("sec-websocket-key"))
            accept = base64.b64encode(hashlib.sha1((key + client.WS_GUID).encode()).digest()).decode()
            conn.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode())
            conn.sendall(frame(1, b'{"type": "sta', fin=False) + frame(9, b"hi") + frame(0, b'tus"}')
                         + frame(2, big) + frame(1, b"x" * 300))
            seen["pong"] = read_client_frame(conn)
            seen["close"] = read_client_frame(conn)

    thread = threading.Thread(target=serve)
    thread.start()
    ws = client.WebSocket("127.0.0.1", listener.getsockname()[1], "/ws?clientId=t")
    assert ws.recv() == (1, b'{"type": "status"}')
    assert ws.recv() == (2, big)
    assert ws.recv() == (1, b"x" * 300)
    ws.close()
    thread.join(10)
    listener.close()
    assert seen == {"pong": (10, b"hi"), "close": (8, b"")}


def test_handshake_with_a_wrong_accept_key_is_refused():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    with pytest.raises(ConnectionError, match="does not match"):
        client.WebSocket("127.0.0.1", listener.getsockname()[1], "/ws")
    thread.join(10)
    listener.close()


# --- the overrides added for apps: checkpoint, motion module, cfg, fps, format, prompt-travel schedule -------------

def test_model_cfg_fps_overrides_and_steps_follow_the_motion_file():
    api = t2v()
    api["7"]["inputs"]["steps"] = 4
    api = client.apply_overrides(api, ckpt="mine.safetensors", motion_module="animatediff_lightning_8step_comfyui"
                                 ".safetensors", cfg=1.5, fps=12)
    assert api["1"]["inputs"]["ckpt_name"] == "mine.safetensors"
    assert api["5"]["inputs"]["model_name"] == "animatediff_lightning_8step_comfyui.safetensors"
    assert api["7"]["inputs"]["steps"] == 0, "steps 0 = the new file's step count"
    assert api["7"]["inputs"]["cfg"] == 1.5
    assert [n["inputs"]["fps"] for n in api.values() if "fps" in n["inputs"]] == [12]
    assert client.apply_overrides(t2v(), motion_module="x.safetensors", steps=3)["7"]["inputs"]["steps"] == 3


def webp_graph() -> dict:
    """The shipped t2v graph ending in Save Animated WEBP (written out here: the shipped save node may be either)."""
    api = {k: v for k, v in t2v().items() if v["class_type"] not in ("SaveAnimatedWEBP", "CreateVideo", "SaveVideo")}
    api["9"] = {"class_type": "SaveAnimatedWEBP", "_meta": {"title": "Save Animated WEBP"},
                "inputs": {"images": ["8", 0], "filename_prefix": "AnimateDiff-Lightning/t2v", "fps": 8.0,
                           "lossless": False, "quality": 90, "method": "default"}}
    return api


def test_format_swaps_the_save_node_both_ways():
    mp4 = client.apply_overrides(webp_graph(), format="mp4", fps=10)
    assert mp4["9"] == {"class_type": "SaveVideo", "_meta": {"title": "Save Video (H.264 MP4)"},
                        "inputs": {"video": ["10", 0], "filename_prefix": "AnimateDiff-Lightning/t2v",
                                   "format": "mp4", "codec": "auto"}}
    assert mp4["10"]["class_type"] == "CreateVideo"
    assert mp4["10"]["inputs"] == {"images": ["8", 0], "fps": 10}
    # A CreateVideo + SaveVideo graph (the shape of an MP4 workflow) back to WEBP: the same graph as before.
    assert client.apply_overrides(mp4, format="webp", fps=8.0) == webp_graph()
    assert client.apply_overrides(mp4, format="mp4") == mp4
    assert client.apply_overrides(webp_graph(), format="webp") == webp_graph()
    # A shipped MP4 workflow saves with format "auto"; --format mp4 makes it MP4 outright.
    shipped = t2v()
    [save] = client.nodes_of(shipped, "SaveVideo")
    assert shipped[save]["inputs"]["format"] == "auto"
    assert client.apply_overrides(shipped, format="mp4")[save]["inputs"]["format"] == "mp4"
    with pytest.raises(client.ClientError, match="no SaveAnimatedWEBP or SaveVideo"):
        client.apply_overrides({"1": {"class_type": "X", "inputs": {}}}, format="mp4")


def test_schedule_sets_the_prompt_travel_node_or_says_there_is_none():
    api = t2v()
    api["20"] = {"class_type": "ADLightning_PromptTravel", "inputs": {"schedule": "0: x", "clip": ["1", 1]}}
    api = client.apply_overrides(api, schedule="0: a fox | 24: a wolf at night")
    assert api["20"]["inputs"]["schedule"] == "0: a fox\n24: a wolf at night"
    with pytest.raises(client.ClientError, match="no ADLightning_PromptTravel node") as e:
        client.apply_overrides(t2v(), schedule="0: a")
    assert e.value.status == 2


def test_names_the_server_lacks_are_listed_with_what_it_has():
    info = {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.ckpt"], {}]}}},
            "ADLightning_LoadMotionModule": {"input": {"required": {"model_name": ["COMBO", {"options": []}]}}}}
    api = {k: v for k, v in t2v().items() if k in ("1", "5")}
    api["1"]["inputs"]["ckpt_name"] = "missing.safetensors"
    with pytest.raises(client.ClientError) as e:
        client.check_names(api, info)
    assert e.value.status == 1
    assert str(e.value).splitlines() == [
        "ComfyUI would reject the workflow (nothing queued):",
        "  node 1 (Load Checkpoint (any SD1.5)), input 'ckpt_name': 'missing.safetensors' is not on the server; "
        "available: a.safetensors, b.ckpt",
        "  node 5 (Load Motion Module), input 'model_name': 'animatediff_lightning_4step_comfyui.safetensors' is not "
        "on the server; available: none (put the file in its models folder, see README)"]
    api["1"]["inputs"]["ckpt_name"] = "b.ckpt"
    info["ADLightning_LoadMotionModule"]["input"]["required"]["model_name"][1]["options"] = [
        "animatediff_lightning_4step_comfyui.safetensors"]
    client.check_names(api, info)
    with pytest.raises(client.ClientError, match="node type CheckpointLoaderSimple is not installed"):
        client.check_names(api, {})


def test_a_model_file_in_another_models_folder_is_named_with_where_it_belongs():
    """A motion module dropped into checkpoints/ (and a checkpoint into animatediff_models/): the server lists it
    under the other loader, and the client says where it is and where it goes, not just "not on the server"."""
    lightning = "animatediff_lightning_4step_comfyui.safetensors"
    info = {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["sd15.safetensors", lightning], {}]}}},
            "ADLightning_LoadMotionModule": {"input": {"required": {"model_name": ["COMBO", {"options": []}]}}}}
    api = {k: v for k, v in t2v().items() if k in ("1", "5")}
    api["1"]["inputs"]["ckpt_name"] = "sd15.safetensors"
    with pytest.raises(client.ClientError) as e:
        client.check_names(api, info)
    assert str(e.value).splitlines()[1:] == [
        f"  node 5 (Load Motion Module), input 'model_name': '{lightning}' is in models/checkpoints, not in "
        f"models/animatediff_models, where this input reads; move the file to models/animatediff_models"]


def test_workflows_are_found_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert client.find_workflow("t2v_lightning") == T2V
    assert client.find_workflow("t2v_lightning.json") == T2V
    (tmp_path / "mine.json").write_text(T2V.read_text())
    assert client.find_workflow("mine.json") == Path("mine.json")   # a caller's file, relative to the caller
    with pytest.raises(client.ClientError, match="shipped: .*t2v_lightning") as e:
        client.find_workflow("nope")
    assert e.value.status == 2


def test_bad_arguments_exit_2_with_one_line(capsys):
    assert client.main(["queue", "t2v_lightning", "--format", "gif"]) == 2
    assert client.main(["queue", "t2v_lightning", "--server", "host:port"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "invalid choice: 'gif'" in err and "give HOST:PORT" in err, err


# --- a fake ComfyUI that writes the history late, as the real one does after execution_success --------------------

class FakeComfy:
    """/object_info, /prompt, /ws, /history, /view. A queued prompt runs in a thread: progress, execution_success,
    then (history_delay later) the history entry, then `executing` with node null, as ComfyUI's prompt worker does."""

    def __init__(self, history_delay: float = 0.3, ckpts=("v1-5-pruned-emaonly-fp16.safetensors",), fail=False):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.history_delay, self.ckpts, self.fail = history_delay, list(ckpts), fail
        self.history, self.queued, self.sockets = {}, [], {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body, content_type="application/json"):
                data = json.dumps(body).encode() if content_type == "application/json" else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/ws":
                    return fake.websocket(self, dict(urllib.parse.parse_qsl(query))["clientId"])
                if path.startswith("/object_info/"):
                    return self.answer(200, fake.object_info(path.rsplit("/", 1)[1]))
                if path.startswith("/history/"):
                    prompt_id = path.rsplit("/", 1)[1]
                    return self.answer(200, {prompt_id: fake.history[prompt_id]} if prompt_id in fake.history else {})
                if path == "/view":
                    return self.answer(200, b"RIFF-clip-" + query.encode(), "image/webp")
                self.answer(404, {})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt_id = uuid.uuid4().hex
                fake.queued.append(body)
                self.answer(200, {"prompt_id": prompt_id, "number": len(fake.queued), "node_errors": {}})
                threading.Thread(target=fake.execute, args=(prompt_id, body), daemon=True).start()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def object_info(self, class_type):
        inputs = {"ckpt_name": [self.ckpts, {}]} if class_type == "CheckpointLoaderSimple" else {}
        return {class_type: {"input": {"required": inputs}}}

    def websocket(self, handler, client_id):
        key = handler.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + client.WS_GUID).encode()).digest()).decode()
        handler.wfile.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode())
        handler.wfile.flush()
        self.sockets[client_id] = handler.connection
        self.send(client_id, "status", {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id})
        try:
            while handler.connection.recv(1024):
                pass
        except OSError:
            pass

    def send(self, client_id, kind, data):
        self.sockets[client_id].sendall(frame(1, json.dumps({"type": kind, "data": data}).encode()))

    def execute(self, prompt_id, body):
        cid, save = body["client_id"], next(k for k, v in body["prompt"].items() if v["class_type"].startswith("Save"))
        for kind, data in (("execution_start", {}), ("executing", {"node": "7"}), ("progress", {"value": 1, "max": 1,
                                                                                               "node": "7"})):
            self.send(cid, kind, {**data, "prompt_id": prompt_id})
        if self.fail:
            error = {"prompt_id": prompt_id, "node_id": "7", "exception_type": "RuntimeError",
                     "exception_message": "boom\n"}
            self.send(cid, "execution_error", error)
            self.history[prompt_id] = {"outputs": {}, "status": {"status_str": "error", "completed": False,
                                                                 "messages": [["execution_error", error]]}}
            return
        self.send(cid, "execution_success", {"prompt_id": prompt_id})
        time.sleep(self.history_delay)   # ComfyUI's worker writes the history after execute() returns
        item = {"filename": f"t2v_{len(self.queued):05}_.webp", "subfolder": "AnimateDiff-Lightning",
                "type": "output"}
        self.history[prompt_id] = {"outputs": {save: {"images": [item], "animated": [True]}},
                                   "status": {"status_str": "success", "completed": True, "messages": []}}
        self.send(cid, "executing", {"node": None, "prompt_id": prompt_id})

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    server = FakeComfy()
    yield server
    server.close()


def test_outputs_are_read_only_after_the_history_is_written(fake, tmp_path):
    """The race of the old client: execution_success came, the history was still empty, 'saved no output file'."""
    for run in range(3):
        paths = client.generate("a fox", seed=run, server=fake.server, out=tmp_path, size="64", frames=8)
        assert paths == [tmp_path / "AnimateDiff-Lightning" / f"t2v_{run + 1:05}_.webp"]
        assert paths[0].read_bytes().startswith(b"RIFF-clip-filename=t2v_")
    queued = fake.queued[-1]["prompt"]
    assert (queued["2"]["inputs"]["text"], queued["7"]["inputs"]["seed"], queued["4"]["inputs"]["batch_size"]) == \
        ("a fox", 2, 8)


def test_cli_from_another_directory_prints_the_saved_path_and_progress(fake, tmp_path):
    run = subprocess.run([sys.executable, str(CLIENT), "queue", "t2v_lightning", "--server", fake.server,
                          "--out", "clips", "--format", "mp4"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{Path('clips') / 'AnimateDiff-Lightning' / 't2v_00001_.webp'}\n"
    assert (tmp_path / run.stdout.strip()).is_file()
    assert "Lightning Sampler: 1/1" in run.stderr and "finished" in run.stderr
    assert [n["class_type"] for n in fake.queued[0]["prompt"].values() if n["class_type"].startswith("Save")] == \
        ["SaveVideo"]


def test_missing_checkpoint_exits_1_before_queueing(fake, tmp_path):
    run = subprocess.run([sys.executable, str(CLIENT), "queue", "t2v_lightning", "--server", fake.server,
                          "--ckpt", "nope.safetensors"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1
    assert "'nope.safetensors' is not on the server; available: v1-5-pruned-emaonly-fp16.safetensors" in run.stderr
    assert fake.queued == [] and run.stdout == ""


def test_a_failed_prompt_exits_1_with_the_node_and_exception(tmp_path):
    server = FakeComfy(fail=True)
    try:
        with pytest.raises(client.ClientError, match=r"^Lightning Sampler \(node 7\) failed: RuntimeError: boom$") \
                as e:
            client.generate("a fox", server=server.server, out=tmp_path)
        assert e.value.status == 1
    finally:
        server.close()


def test_client_answers_match_the_golden_the_page_is_tested_against():
    """tests/fixtures/client_page_golden.json is what the client answers; tests/js/app_logic.test.mjs holds the app
    page to the same file, so a change to either shows here or there."""
    from dev.refresh_client_golden import GOLDEN, golden
    assert golden() == json.loads(GOLDEN.read_text()), "rerun python -m dev.refresh_client_golden after a deliberate change"


def test_a_batch_is_spread_over_several_servers_and_keeps_every_clip(tmp_path):
    """--count over two servers: each server takes the next clip when it is free; clips the two servers name alike
    are both kept; the seeds run on from --seed."""
    one, two = FakeComfy(history_delay=0.05), FakeComfy(history_delay=0.2)
    try:
        run = subprocess.run([sys.executable, str(CLIENT), "queue", "t2v_lightning", "--server",
                              f"{one.server},{two.server}", "--count", "5", "--seed", "40", "--out", "clips",
                              "--quiet"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        paths = run.stdout.split()
        assert len(paths) == 5 and len(set(paths)) == 5 and all((tmp_path / p).is_file() for p in paths)
        seeds = sorted(q["prompt"]["7"]["inputs"]["seed"] for fake in (one, two) for q in fake.queued)
        assert seeds == [40, 41, 42, 43, 44] and one.queued and two.queued
    finally:
        one.close()
        two.close()


# --- the server names the files: downloads stay inside --out ------------------------------------------------------

class ViewOnly:
    """A Comfy stand-in whose /view answers every request (what a hostile server would do)."""

    def __init__(self):
        self.asked = []

    def request(self, path, body=None):
        self.asked.append(path)
        return 200, b"payload"


@pytest.mark.parametrize("subfolder, filename", [
    ("/tmp", "x.mp4"), ("../..", "x.mp4"), ("AnimateDiff-Lightning/../../..", "x.mp4"), ("", "../x.mp4"),
    ("", "/etc/cron.d/x"), ("", ""), ("", ".."), ("", None), (["a"], "x.mp4"), ("a\0b", "x.mp4"),
])
def test_a_server_cannot_make_the_client_write_outside_out(tmp_path, subfolder, filename):
    out = tmp_path / "out"
    entry = {"outputs": {"9": {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}]}}}
    with pytest.raises(client.ClientError, match="refused"):
        client.download_outputs(ViewOnly(), entry, out)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [], "nothing written anywhere"


def test_a_link_inside_out_that_points_out_is_not_followed(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "AnimateDiff-Lightning").symlink_to(elsewhere)
    entry = {"outputs": {"9": {"images": [{"filename": "x.mp4", "subfolder": "AnimateDiff-Lightning",
                                           "type": "output"}]}}}
    with pytest.raises(client.ClientError, match="through a link"):
        client.download_outputs(ViewOnly(), entry, out)
    assert list(elsewhere.iterdir()) == []
    entry["outputs"]["9"]["images"][0]["subfolder"] = "sub/dir"     # a subfolder the server makes is fine
    assert client.download_outputs(ViewOnly(), entry, out) == [out / "sub" / "dir" / "x.mp4"]
    assert (out / "sub" / "dir" / "x.mp4").read_bytes() == b"payload"
