"""workflows/client.py without ComfyUI: overrides, error reports, the websocket framing, an unreachable server."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading

import pytest

from tools.node_defs import REPO
from workflows import client

CLIENT = REPO / "workflows" / "client.py"
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
