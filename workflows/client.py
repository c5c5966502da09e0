"""Queue an API-format workflow on a running ComfyUI, follow its progress, download what it saved.

    python workflows/client.py queue workflows/api/t2v_lightning.json --prompt "a red fox in snow" --seed 7

Standard library only (the websocket handshake and framing are the few lines below), so it runs from any Python 3.10+
without installing anything. Progress comes from ComfyUI's websocket (/ws); outputs are fetched with /history and
/view. Exit status: 0 done, 1 ComfyUI rejected or failed the prompt, 2 bad arguments or server unreachable.
"""
from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

DEFAULT_SERVER = "127.0.0.1:8188"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455's fixed accept-key suffix
SEED_INPUTS = ("seed", "noise_seed")
OUTPUT_KINDS = ("images", "gifs", "videos", "audio", "animated")


class ClientError(Exception):
    """A failure to report as one line, with an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# --- websocket (RFC 6455 client: handshake, masked sends, unmasked receives) --------------------------------------

class WebSocket:
    def __init__(self, host: str, port: int, path: str, timeout: float = 30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection during the websocket handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ConnectionError(f"websocket upgrade refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise ConnectionError("websocket handshake answer does not match the key")

    def settimeout(self, seconds: float | None) -> None:
        self.sock.settimeout(seconds)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("websocket closed by the server")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, payload: bytes | str, opcode: int = 1) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        elif len(data) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> tuple[int, bytes]:
        """The next whole message as (opcode, payload): 1 text, 2 binary, 8 close. Answers pings itself."""
        message, message_opcode = b"", None
        while True:
            b0, b1 = self._read(2)
            fin, opcode, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(length)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 9:
                self.send(data, opcode=10)
                continue
            if opcode == 10:
                continue
            if opcode == 8:
                return 8, data
            if opcode != 0:
                message_opcode = opcode
            message += data
            if fin:
                return message_opcode, message

    def close(self) -> None:
        try:
            self.send(b"", opcode=8)
        except OSError:
            pass
        self.sock.close()


# --- workflow overrides -----------------------------------------------------------------------------------------

def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def text_node_for(api: dict, which: str) -> str:
    """The text-encoder node feeding every sampler's `which` (positive/negative) input, followed upstream."""
    found = set()
    for node in api.values():
        link = node["inputs"].get(which)
        if not is_link(link):
            continue
        seen, todo = set(), [link[0]]
        while todo:
            key = todo.pop()
            if key in seen or key not in api:
                continue
            seen.add(key)
            if isinstance(api[key]["inputs"].get("text"), str):
                found.add(key)
                break
            todo += [v[0] for v in api[key]["inputs"].values() if is_link(v)]
    if len(found) != 1:
        raise ClientError(f"cannot set the {which} prompt: the workflow has "
                          f"{'no' if not found else len(found)} text node(s) feeding a '{which}' input", 2)
    return found.pop()


def latent_nodes(api: dict) -> list[dict]:
    """Empty-latent-style nodes: they set the frame count (batch_size) and the size (width, height)."""
    return [n for n in api.values() if {"width", "height", "batch_size"} <= set(n["inputs"])]


def set_all(api: dict, names: tuple, value, what: str) -> None:
    targets = [(n, k) for n in api.values() for k in names if k in n["inputs"] and not is_link(n["inputs"][k])]
    if not targets:
        raise ClientError(f"cannot set {what}: no node in the workflow has a {'/'.join(names)} input", 2)
    for node, k in targets:
        node["inputs"][k] = value


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, _, h = text.lower().partition("x")
        width, height = int(w), int(h or w)
    except ValueError:
        raise ClientError(f"--size {text!r}: give WIDTHxHEIGHT or one number, e.g. 512x512", 2) from None
    if width % 8 or height % 8 or width < 64 or height < 64:
        raise ClientError(f"--size {text}: width and height must be multiples of 8, at least 64", 2)
    return width, height


def apply_overrides(api: dict, prompt=None, negative=None, seed=None, frames=None, size=None, steps=None) -> dict:
    api = copy.deepcopy(api)
    if prompt is not None:
        api[text_node_for(api, "positive")]["inputs"]["text"] = prompt
    if negative is not None:
        api[text_node_for(api, "negative")]["inputs"]["text"] = negative
    if seed is not None:
        set_all(api, SEED_INPUTS, seed, "--seed")
    if steps is not None:
        set_all(api, ("steps",), steps, "--steps")
    if frames is not None or size is not None:
        latents = latent_nodes(api)
        if not latents:
            raise ClientError("cannot set --frames/--size: the workflow has no empty-latent node "
                              "(width, height, batch_size)", 2)
        for node in latents:
            if frames is not None:
                node["inputs"]["batch_size"] = frames
            if size is not None:
                node["inputs"]["width"], node["inputs"]["height"] = parse_size(size)
    return api


def load_workflow(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ClientError(f"cannot read {path}: {e.strerror}", 2) from None
    except json.JSONDecodeError as e:
        raise ClientError(f"{path} is not JSON: {e}", 2) from None
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise ClientError(f"{path} is a UI-format workflow; queue its API twin (workflows/api/), or in ComfyUI use "
                          f"Workflow > Export (API)", 2)
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        raise ClientError(f"{path} is not an API-format workflow (node id -> {{class_type, inputs}})", 2)
    return data


# --- talking to ComfyUI -----------------------------------------------------------------------------------------

class Comfy:
    def __init__(self, server: str, timeout: float = 30):
        url = urllib.parse.urlsplit(server if "://" in server else f"http://{server}")
        if not url.hostname:
            raise ClientError(f"--server {server!r}: give HOST:PORT, e.g. {DEFAULT_SERVER}", 2)
        self.host, self.port = url.hostname, url.port or 80
        self.base = f"http://{self.host}:{self.port}"
        self.timeout = timeout

    def unreachable(self, error) -> ClientError:
        reason = getattr(error, "reason", None) or error
        reason = getattr(reason, "strerror", None) or str(reason)
        return ClientError(f"cannot reach ComfyUI at {self.host}:{self.port}: {reason} "
                           f"(is it running? pass --server HOST:PORT)", 2)

    def request(self, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise self.unreachable(e) from None

    def get_json(self, path: str):
        status, raw = self.request(path)
        if status != 200:
            raise ClientError(f"GET {path} answered {status}")
        return json.loads(raw)

    def connect(self, client_id: str) -> WebSocket:
        try:
            return WebSocket(self.host, self.port, f"/ws?clientId={client_id}", timeout=self.timeout)
        except OSError as e:
            raise self.unreachable(e) from None

    def queue(self, api: dict, client_id: str) -> str:
        status, raw = self.request("/prompt", {"prompt": api, "client_id": client_id})
        try:
            answer = json.loads(raw)
        except json.JSONDecodeError:
            raise ClientError(f"ComfyUI answered {status} to /prompt: {raw[:200]!r}") from None
        if status != 200 or answer.get("node_errors"):
            raise ClientError(describe_rejection(api, answer))
        return answer["prompt_id"]


def describe_rejection(api: dict, answer: dict) -> str:
    """ComfyUI's validation answer as one line for the prompt and one per node and input."""
    error = answer.get("error") or {}
    lines = [f"ComfyUI rejected the workflow: {error.get('message', 'invalid prompt')}"
             + (f" ({error['details']})" if error.get("details") else "")]
    for node_id, info in (answer.get("node_errors") or {}).items():
        title = api.get(node_id, {}).get("_meta", {}).get("title") or info.get("class_type", "?")
        for e in info.get("errors", []):
            name = (e.get("extra_info") or {}).get("input_name")
            where = f"node {node_id} ({title})" + (f", input '{name}'" if name else "")
            lines.append(f"  {where}: {e.get('message', '')}" + (f" - {e['details']}" if e.get("details") else ""))
    return "\n".join(lines)


def node_label(api: dict, node_id) -> str:
    node = api.get(str(node_id), {})
    return node.get("_meta", {}).get("title") or node.get("class_type") or str(node_id)


def follow(ws: WebSocket, comfy: Comfy, api: dict, prompt_id: str, timeout: float, log) -> None:
    """Print progress until the prompt finishes; raise ClientError if it fails."""
    deadline = time.monotonic() + timeout
    ws.settimeout(10)
    while True:
        if time.monotonic() > deadline:
            raise ClientError(f"prompt {prompt_id} still running after {timeout:.0f}s; it keeps running on the "
                              f"server (see its queue)")
        try:
            opcode, payload = ws.recv()
        except socket.timeout:
            # A CPU step can take minutes without a message; the history says whether we missed the end.
            if prompt_id in comfy.get_json(f"/history/{prompt_id}"):
                return
            continue
        if opcode == 8:
            raise ClientError("ComfyUI closed the websocket before the prompt finished")
        if opcode != 1:
            continue   # binary frames are latent previews
        message = json.loads(payload)
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") not in (None, prompt_id):
            continue
        if kind == "execution_start":
            log("running")
        elif kind == "execution_cached" and data.get("nodes"):
            log(f"cached: {', '.join(node_label(api, n) for n in data['nodes'])}")
        elif kind == "executing" and data.get("node") is not None:
            log(f"{node_label(api, data['node'])}")
        elif kind == "progress":
            log(f"  {node_label(api, data.get('node'))}: {data.get('value')}/{data.get('max')}")
        elif kind == "execution_error":
            raise ClientError(f"{node_label(api, data.get('node_id'))} (node {data.get('node_id')}) failed: "
                              f"{data.get('exception_type', 'error')}: {data.get('exception_message', '').strip()}")
        elif kind == "execution_interrupted":
            raise ClientError("the prompt was interrupted on the server")
        elif kind == "execution_success" or (kind == "executing" and data.get("node") is None
                                             and data.get("prompt_id") == prompt_id):
            return


def download_outputs(comfy: Comfy, prompt_id: str, out_dir: str) -> list[str]:
    entry = comfy.get_json(f"/history/{prompt_id}").get(prompt_id, {})
    status = entry.get("status", {})
    if status.get("status_str") == "error":
        raise ClientError(f"prompt {prompt_id} failed on the server (see its log)")
    saved = []
    for node_output in entry.get("outputs", {}).values():
        for kind in OUTPUT_KINDS:
            for item in node_output.get(kind, []):
                if not isinstance(item, dict) or item.get("type") != "output":
                    continue   # previews (type temp) are not results
                query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
                code, data = comfy.request(f"/view?{query}")
                if code != 200:
                    raise ClientError(f"could not download {item['filename']}: /view answered {code}")
                path = os.path.join(out_dir, item.get("subfolder", ""), item["filename"])
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
                saved.append(path)
    return saved


def queue_command(args) -> int:
    api = apply_overrides(load_workflow(args.workflow), prompt=args.prompt, negative=args.negative, seed=args.seed,
                          frames=args.frames, size=args.size, steps=args.steps)
    comfy = Comfy(args.server)
    client_id = uuid.uuid4().hex
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    ws = comfy.connect(client_id)   # before queueing, so no progress message is missed
    try:
        prompt_id = comfy.queue(api, client_id)
        log(f"queued {prompt_id} on {comfy.host}:{comfy.port}")
        follow(ws, comfy, api, prompt_id, args.timeout, log)
    finally:
        ws.close()
    saved = download_outputs(comfy, prompt_id, args.out)
    if not saved:
        raise ClientError("the prompt finished but saved no output file (does the workflow end in a Save node?)")
    for path in saved:
        print(path)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="client.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("queue", help="queue an API-format workflow and download its outputs")
    q.add_argument("workflow", help="API-format workflow JSON, e.g. workflows/api/t2v_lightning.json")
    q.add_argument("--server", default=DEFAULT_SERVER, help=f"ComfyUI HOST:PORT (default {DEFAULT_SERVER})")
    q.add_argument("--prompt", help="positive prompt text")
    q.add_argument("--negative", help="negative prompt text (only used at cfg > 1)")
    q.add_argument("--seed", type=int, help="noise seed")
    q.add_argument("--frames", type=int, help="frame count (the empty latent's batch_size)")
    q.add_argument("--size", help="WIDTHxHEIGHT or one number for a square, multiples of 8")
    q.add_argument("--steps", type=int, help="sampler steps (0 = the motion module's Lightning step count)")
    q.add_argument("--out", default="comfy_outputs", help="folder to save outputs in (default ./comfy_outputs)")
    q.add_argument("--timeout", type=float, default=3600, help="give up waiting after this many seconds")
    q.add_argument("--quiet", action="store_true", help="print only the saved file paths")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return queue_command(args)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print("error: interrupted (the prompt may still be running on the server)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
