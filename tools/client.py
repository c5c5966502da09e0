"""Queue a workflow on a running ComfyUI, follow its progress, download the clip it saved.

    python tools/client.py queue t2v_lightning --prompt "a red fox in snow" --seed 7     # from any directory

    import client                                              # or: from tools import client
    paths = client.generate("a red fox in snow", seed=7, frames=16, format="mp4")

Why one file: it is the reference for apps that talk to ComfyUI, and the promise is "copy client.py next to your
app, no install" (standard library only, Python 3.10+). That is why it holds four small parts instead of being a
package, each in its own section below: an RFC 6455 websocket client (progress comes from ComfyUI's /ws; the
host-tier harness reuses it), the workflow edits behind the overrides, the HTTP calls (/object_info, /prompt,
/history, /view) and the wait for completion, and the command line. Workflows are found by name in the api/ folder
next to this file (the shipped API workflows), or by path relative to the caller.

A prompt is complete when ComfyUI has written its history entry (ComfyUI sends `executing` with node null right
after that). `execution_success` is not enough: ComfyUI sends it before it writes the history, so outputs are read
only once the entry is there.

Exit status: 0 the clip was saved, 1 ComfyUI rejected or failed the prompt (including a file name the server does not
have, found before queueing), 2 ComfyUI could not be reached or the arguments were bad.
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
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

DEFAULT_SERVER = "127.0.0.1:8188"
SHIPPED = Path(__file__).resolve().parents[1] / "workflows" / "api"   # the API workflows found by name
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455's fixed accept-key suffix
SEED_INPUTS = ("seed", "noise_seed")
OUTPUT_KINDS = ("images", "gifs", "videos", "audio", "animated")
FORMATS = ("mp4", "webp")
PROMPT_TRAVEL = "ADLightning_PromptTravel"
MOTION_LOADER = "ADLightning_LoadMotionModule"
# Past the 16 frames Lightning was trained on, a clip is made in context windows (the shipped long workflow's
# Context Windows node) and decoded a few frames at a time, as t2v_long_64 does; the app page does the same.
WINDOWS_ABOVE = 16
LONG_WORKFLOW = "t2v_long_64"


class ClientError(Exception):
    """A failure to report as one line (or one per node), with an exit status: 1 ComfyUI said no, 2 ours."""

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


# --- workflows: finding them, and the overrides ------------------------------------------------------------------

def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def nodes_of(api: dict, *class_types: str) -> list[str]:
    return [k for k, v in api.items() if v["class_type"] in class_types]


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
        w, x, h = text.lower().partition("x")
        width, height = int(w), int(h if x else w)
    except ValueError:
        raise ClientError(f"--size {text!r}: give WIDTHxHEIGHT or one number, e.g. 512x512", 2) from None
    if width % 8 or height % 8 or width < 64 or height < 64:
        raise ClientError(f"--size {text}: width and height must be multiples of 8, at least 64", 2)
    return width, height


def new_id(api: dict) -> str:
    return str(max((int(k) for k in api if k.isdigit()), default=0) + 1)


def set_format(api: dict, fmt: str) -> None:
    """Swap the save node: SaveAnimatedWEBP <-> core CreateVideo + SaveVideo (H.264 MP4). The save node keeps its id
    and filename prefix; the frame rate moves with it."""
    if fmt not in FORMATS:
        raise ClientError(f"--format {fmt!r}: give one of {', '.join(FORMATS)}", 2)
    webps, videos = nodes_of(api, "SaveAnimatedWEBP"), nodes_of(api, "SaveVideo")
    if not webps and not videos:
        raise ClientError("cannot set --format: the workflow has no SaveAnimatedWEBP or SaveVideo node", 2)
    if fmt == "mp4":
        for key in videos:   # already a video save: make its container MP4 outright, not "auto"
            api[key]["inputs"]["format"] = "mp4"
        for key in webps:
            old = api[key]["inputs"]
            create = new_id(api)
            api[create] = {"class_type": "CreateVideo", "inputs": {"images": old["images"], "fps": old["fps"]},
                           "_meta": {"title": "Create Video (frame rate)"}}
            api[key] = {"class_type": "SaveVideo",
                        "inputs": {"video": [create, 0], "filename_prefix": old["filename_prefix"],
                                   "format": "mp4", "codec": "auto"},
                        "_meta": {"title": "Save Video (H.264 MP4)"}}
        return
    for key in videos:
        old = api[key]["inputs"]
        source = old["video"][0] if is_link(old["video"]) else None
        if source not in api or api[source]["class_type"] != "CreateVideo":
            raise ClientError(f"cannot set --format webp: SaveVideo node {key} is not fed by a CreateVideo node", 2)
        frames = api[source]["inputs"]
        api[key] = {"class_type": "SaveAnimatedWEBP",
                    "inputs": {"images": frames["images"], "filename_prefix": old["filename_prefix"],
                               "fps": frames["fps"], "lossless": False, "quality": 90, "method": "default"},
                    "_meta": {"title": "Save Animated WEBP"}}
        if not any(is_link(v) and v[0] == source for n in api.values() for v in n["inputs"].values()):
            del api[source]


def apply_overrides(api: dict, prompt=None, negative=None, seed=None, frames=None, size=None, steps=None,
                    ckpt=None, motion_module=None, cfg=None, fps=None, format=None, schedule=None,
                    windows: bool = True) -> dict:
    """A copy of the API workflow with the given values set; None leaves a value as the workflow has it. windows:
    past WINDOWS_ABOVE frames, give samplers without context windows the long workflow's (off: the graph as it is)."""
    api = copy.deepcopy(api)
    if prompt is not None:
        api[text_node_for(api, "positive")]["inputs"]["text"] = prompt
    if negative is not None:
        api[text_node_for(api, "negative")]["inputs"]["text"] = negative
    if seed is not None:
        set_all(api, SEED_INPUTS, seed, "--seed")
    if ckpt is not None:
        set_all(api, ("ckpt_name",), ckpt, "--ckpt")
    if motion_module is not None:
        loaders = nodes_of(api, MOTION_LOADER)
        if not loaders:
            raise ClientError(f"cannot set --motion-module: the workflow has no {MOTION_LOADER} node", 2)
        for key in loaders:
            api[key]["inputs"]["model_name"] = motion_module
        if steps is None:
            steps = 0   # 0 = the file's Lightning step count: steps follow the new file
    if steps is not None:
        set_all(api, ("steps",), steps, "--steps")
    if cfg is not None:
        set_all(api, ("cfg",), cfg, "--cfg")
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
    if format is not None:
        set_format(api, format)
    if fps is not None:
        set_all(api, ("fps",), fps, "--fps")
    if schedule is not None:
        travel = nodes_of(api, PROMPT_TRAVEL)
        if not travel:
            raise ClientError(f"cannot set --schedule: the workflow has no {PROMPT_TRAVEL} node (queue a "
                              f"prompt-travel workflow)", 2)
        for key in travel:
            api[key]["inputs"]["schedule"] = schedule.replace(" | ", "\n")
    if windows and frames is not None and frames > WINDOWS_ABOVE:
        add_windows(api)
    return api


def add_windows(api: dict) -> None:
    """Context windows for a long clip: the long workflow's Context Windows node on every Lightning sampler that has
    none, and its sliced decode in place of each VAE Decode (same inputs)."""
    long_graph = load_workflow(LONG_WORKFLOW)
    [options] = [long_graph[k] for k in nodes_of(long_graph, "ADLightning_ContextOptions")]
    [decode] = [long_graph[k] for k in nodes_of(long_graph, "ADLightning_DecodeFrames")]
    for key in nodes_of(api, "ADLightning_Sampler"):
        if api[key]["inputs"].get("context_options"):
            continue
        node = new_id(api)
        api[node] = copy.deepcopy(options)
        api[key]["inputs"]["context_options"] = [node, 0]
    for key in nodes_of(api, "VAEDecode"):
        api[key] = {**copy.deepcopy(decode), "inputs": {**decode["inputs"], **api[key]["inputs"]}}


# --- streams: a clip that goes on, chunk after chunk ------------------------------------------------------------
# Each chunk is its own prompt; from the second on, its first STREAM_OVERLAP frames are the previous chunk's last ones,
# pinned (Extend Video, from the saved latent of that chunk, read from ComfyUI's output folder), so the motion goes on
# across chunks, and only the new frames are decoded and saved. Every chunk keeps the same seed: Extend Video gives
# each frame the noise of its place in the whole stream. The app page builds the same graphs (shared golden).
STREAM_OVERLAP = 4
STREAM_FRAMES = 16


def stream_chunk(api: dict, index: int, previous_latent: str | None, name: str) -> dict:
    """Chunk `index` (from 0) of the stream `name`: a copy of the text-to-video graph `api` (one Lightning sampler,
    its frames the chunk's, overrides already applied) that also saves the sampled latent; from chunk 1 on it
    continues `previous_latent` (the previous chunk's saved latent, "subfolder/file.latent" in the output folder)
    and decodes only its new frames. Videos and latents are saved under AnimateDiff-Lightning/stream/<name>."""
    api = copy.deepcopy(api)
    samplers = nodes_of(api, "ADLightning_Sampler")
    latents = latent_nodes(api)
    if len(samplers) != 1 or len(latents) != 1:
        raise ClientError("a stream needs a text-to-video workflow with one Lightning sampler and one empty latent "
                          "(e.g. t2v_lightning)", 2)
    [sampler], [latent] = samplers, latents
    frames = latent["inputs"]["batch_size"]
    if not STREAM_OVERLAP < frames <= 32:
        raise ClientError(f"a stream chunk has {frames} frames: give {STREAM_OVERLAP + 1}-32 (16 is what Lightning "
                          f"was trained on)", 2)
    prefix = f"AnimateDiff-Lightning/stream/{name}"
    for key in nodes_of(api, "SaveVideo", "SaveAnimatedWEBP"):
        api[key]["inputs"]["filename_prefix"] = prefix
    api[new_id(api)] = {"class_type": "SaveLatent", "inputs": {"samples": [sampler, 0],
                                                              "filename_prefix": f"{prefix}_latent"},
                        "_meta": {"title": "Save Latent (the next chunk continues it)"}}
    if index == 0:
        return api
    if not previous_latent:
        raise ClientError(f"stream chunk {index} needs the previous chunk's saved latent", 2)
    empty = api[sampler]["inputs"]["latent_image"][0]
    load = new_id(api)
    api[load] = {"class_type": "LoadLatent", "inputs": {"latent": f"{previous_latent} [output]"},
                 "_meta": {"title": "Load Latent (the previous chunk)"}}
    extend = new_id(api)
    api[extend] = {"class_type": "ADLightning_ExtendVideo",
                   "inputs": {"video": [load, 0], "overlap": STREAM_OVERLAP, "frames": frames, "strength": 1.0,
                              "init": "noise", "first_frame": (index - 1) * (frames - STREAM_OVERLAP)},
                   "_meta": {"title": "Extend Video (next chunk)"}}
    api[sampler]["inputs"]["latent_image"] = [extend, 0]
    join = new_id(api)
    api[join] = {"class_type": "ADLightning_JoinChunks", "inputs": {"chunk": [sampler, 0], "overlap": STREAM_OVERLAP},
                 "_meta": {"title": "Join Chunks (the new frames)"}}
    for node in api.values():
        decodes = node["class_type"] in ("VAEDecode", "ADLightning_DecodeFrames")
        if decodes and node["inputs"]["samples"] == [sampler, 0]:
            node["inputs"]["samples"] = [join, 0]
    if not any(is_link(v) and v[0] == empty for n in api.values() for v in n["inputs"].values()):
        del api[empty]
    return api


def saved_latent(entry: dict) -> str | None:
    """The latent a stream chunk saved, as LoadLatent names a file of the output folder ("subfolder/file")."""
    for node_output in entry.get("outputs", {}).values():
        for item in node_output.get("latents", []):
            if isinstance(item, dict) and item.get("type") == "output":
                return "/".join(p for p in (item.get("subfolder", ""), item["filename"]) if p)
    return None


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.json")) if SHIPPED.is_dir() else []


def find_workflow(name_or_path: str) -> Path:
    """A path (relative to the caller's directory) if one exists, else a shipped API workflow by name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if len(path.parts) == 1 and shipped.is_file():
        return shipped
    names = shipped_names()
    raise ClientError(f"no workflow file {name_or_path!r}" + (f", and no shipped workflow of that name (shipped: "
                                                                f"{', '.join(names)})" if names else ""), 2)


def load_workflow(name_or_path: str) -> dict:
    path = find_workflow(name_or_path)
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


def node_label(api: dict, node_id) -> str:
    node = api.get(str(node_id), {})
    return node.get("_meta", {}).get("title") or node.get("class_type") or str(node_id)


def combo_options(spec) -> list[str] | None:
    """The choices of a combo input in /object_info (old form [[...], {}], or V3 ["COMBO", {"options": [...]}])."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        options = spec[0]
    elif spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
    else:
        return None
    return options if isinstance(options, list) and all(isinstance(o, str) for o in options) else None


# Inputs that name a model file: (node type, input) -> the models folder the server lists for it.
MODEL_INPUTS = {("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
                (MOTION_LOADER, "model_name"): "animatediff_models",
                ("ADLightning_LoadMotionLoRA", "lora_name"): "animatediff_motion_lora",
                ("LoraLoader", "lora_name"): "loras", ("ControlNetLoader", "control_net_name"): "controlnet",
                ("UpscaleModelLoader", "model_name"): "upscale_models",
                ("ADLightning_LoadUpscaleModel", "model_name"): "upscale_models"}


def folder_holding(name: str, object_info: dict, besides: str) -> str | None:
    """The models folder other than `besides` whose loader lists `name` in object_info (a motion module left in
    checkpoints/, a checkpoint in animatediff_models/), or None."""
    for (class_type, input_name), folder in MODEL_INPUTS.items():
        spec = ((object_info.get(class_type) or {}).get("input", {}).get("required") or {}).get(input_name)
        if folder != besides and name in (combo_options(spec) or []):
            return folder
    return None


def check_names(api: dict, object_info: dict) -> None:
    """Every node type installed, every combo value (file names included) one the server offers: what ComfyUI would
    reject, said before queueing, with the names it does have. A model file found in another models folder is named
    with the folder it is in and the one it belongs in. object_info may hold the loaders of MODEL_INPUTS too."""
    problems = []
    for key, node in api.items():
        info = object_info.get(node["class_type"])
        where = f"node {key} ({node_label(api, key)})"
        if not info:
            problems.append(f"  {where}: node type {node['class_type']} is not installed on the server")
            continue
        specs = {name: spec for group in ("required", "optional") for name, spec in
                 (info.get("input", {}).get(group) or {}).items()}
        for name, value in node["inputs"].items():
            options = combo_options(specs.get(name))
            if options is None or not isinstance(value, str) or value in options:
                continue
            folder = MODEL_INPUTS.get((node["class_type"], name))
            elsewhere = folder and folder_holding(value, object_info, folder)
            if elsewhere:
                problems.append(f"  {where}, input '{name}': {value!r} is in models/{elsewhere}, not in "
                                f"models/{folder}, where this input reads; move the file to models/{folder}")
                continue
            have = ", ".join(options) if options else "none (put the file in its models folder, see README)"
            problems.append(f"  {where}, input '{name}': {value!r} is not on the server; available: {have}")
    if problems:
        raise ClientError("\n".join(["ComfyUI would reject the workflow (nothing queued):", *problems]))


# --- talking to ComfyUI ------------------------------------------------------------------------------------------

class Comfy:
    def __init__(self, server: str, timeout: float = 30):
        url = urllib.parse.urlsplit(server if "://" in server else f"http://{server}")
        try:
            port = url.port
        except ValueError:   # not a number, or out of range
            port = -1
        if not url.hostname or port == -1:
            raise ClientError(f"--server {server!r}: give HOST:PORT, e.g. {DEFAULT_SERVER}", 2)
        self.host, self.port = url.hostname, port or 80
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

    def object_info(self, class_types) -> dict:
        info = {}
        for class_type in sorted(set(class_types)):
            info.update(self.get_json(f"/object_info/{urllib.parse.quote(class_type)}"))
        return info

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

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


def describe_failure(api: dict, data: dict) -> str:
    """An execution_error message (websocket, or the history's status messages) as one line."""
    node = data.get("node_id")
    return (f"{node_label(api, node)} (node {node}) failed: {data.get('exception_type', 'error')}: "
            f"{str(data.get('exception_message', '')).strip()}")


def follow(ws: WebSocket, comfy: Comfy, api: dict, prompt_id: str, deadline: float, log) -> None:
    """Print progress until ComfyUI says the prompt is complete (`executing` with node null, sent after the history
    is written) or its history entry is there; raise ClientError if it fails."""
    ws.settimeout(10)
    while time.monotonic() < deadline:
        try:
            opcode, payload = ws.recv()
        except socket.timeout:
            # A CPU step can take minutes without a message; the history says whether we missed the end.
            if comfy.history(prompt_id) is not None:
                return
            continue
        except OSError:
            return   # the websocket went away; the history decides (wait_for_history)
        if opcode == 8:
            return
        if opcode != 1:
            continue   # binary frames are latent previews
        message = json.loads(payload)
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") != prompt_id:
            continue
        if kind == "execution_start":
            log("running")
        elif kind == "execution_cached" and data.get("nodes"):
            log(f"cached: {', '.join(node_label(api, n) for n in data['nodes'])}")
        elif kind == "executing" and data.get("node") is not None:
            log(f"{node_label(api, data['node'])}")
        elif kind == "executing":
            return   # node null: ComfyUI is done with the prompt and has written its history
        elif kind == "progress":
            log(f"  {node_label(api, data.get('node'))}: {data.get('value')}/{data.get('max')}")
        elif kind == "execution_error":
            raise ClientError(describe_failure(api, data))
        elif kind == "execution_interrupted":
            raise ClientError("the prompt was interrupted on the server")
        elif kind == "execution_success":
            log("finished")   # not the end: ComfyUI writes the history after this message
    raise ClientError(f"prompt {prompt_id} still running; gave up waiting (it keeps running on the server)")


def wait_for_history(comfy: Comfy, api: dict, prompt_id: str, deadline: float) -> dict:
    """The prompt's history entry, once ComfyUI has written it; ClientError if the prompt failed."""
    pause = 0.05
    while (entry := comfy.history(prompt_id)) is None:
        if time.monotonic() > deadline:
            raise ClientError(f"prompt {prompt_id} has no history entry yet; gave up waiting (it may still be "
                              f"running on the server)")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        errors = [m[1] for m in status.get("messages", []) if m and m[0] == "execution_error"]
        raise ClientError(describe_failure(api, errors[0]) if errors else
                          f"prompt {prompt_id} failed on the server (see its log)")
    return entry


def output_files(entry: dict) -> list[dict]:
    """The saved files of a history entry ({filename, subfolder, type}), in the order ComfyUI lists them; previews
    (type temp) are not results."""
    return [{"filename": item.get("filename"), "subfolder": item.get("subfolder", ""), "type": item["type"]}
            for node_output in entry.get("outputs", {}).values() for kind in OUTPUT_KINDS
            for item in node_output.get(kind, []) if isinstance(item, dict) and item.get("type") == "output"]


def output_path(out_dir, item: dict) -> Path:
    """Where an output the server names is saved: out_dir/subfolder/filename, refused unless it stays inside out_dir.
    The names come from the server, so a hostile one could otherwise write anywhere (an absolute subfolder, '..',
    a link inside out_dir that points out)."""
    subfolder, filename = item.get("subfolder", ""), item.get("filename")
    named = f"subfolder {subfolder!r}, filename {filename!r}"
    if not isinstance(subfolder, str) or not isinstance(filename, str) or not filename \
            or filename != Path(filename).name or filename in (".", ".."):
        raise ClientError(f"the server named an output file that is not a plain file name ({named}); refused")
    if Path(subfolder).is_absolute() or ".." in Path(subfolder).parts or "\0" in subfolder + filename:
        raise ClientError(f"the server named an output outside the output folder ({named}); refused")
    path = Path(out_dir) / subfolder / filename
    base = Path(out_dir).resolve()
    if not path.resolve().is_relative_to(base) or path.resolve() == base:
        raise ClientError(f"the server named an output that leads outside {out_dir} ({named}, through a link); "
                          f"refused")
    return path


def download_outputs(comfy: Comfy, entry: dict, out_dir) -> list[Path]:
    saved = []
    for item in output_files(entry):
        path = output_path(out_dir, item)   # refused before anything is fetched
        code, data = comfy.request(f"/view?{urllib.parse.urlencode(item)}")
        if code != 200:
            raise ClientError(f"could not download {item['filename']}: /view answered {code}")
        saved.append(write_new(path, data))
    return saved


def write_new(path: Path, data: bytes) -> Path:
    """Write to `path`, or to path-2, path-3, ... if that name is taken (clips of a batch from several servers can
    share a name): nothing already downloaded is overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            with open(candidate, "xb") as f:
                f.write(data)
            return candidate
        except FileExistsError:
            continue
    raise ClientError(f"no free file name for {path.name} in {path.parent}", 2)


def check_on(comfy: Comfy, api: dict) -> None:
    """check_names against what this server has (the workflow's node types and every model loader)."""
    check_names(api, comfy.object_info([node["class_type"] for node in api.values()] +
                                       [class_type for class_type, _ in MODEL_INPUTS]))


def execute(comfy: Comfy, api: dict, timeout: float, log) -> tuple[str, dict]:
    """Queue an API workflow and follow it to the end: (prompt id, its history entry)."""
    client_id = uuid.uuid4().hex
    ws = comfy.connect(client_id)   # before queueing, so no progress message is missed
    deadline = time.monotonic() + timeout
    try:
        prompt_id = comfy.queue(api, client_id)
        log(f"queued {prompt_id} on {comfy.host}:{comfy.port}")
        follow(ws, comfy, api, prompt_id, deadline, log)
    finally:
        ws.close()
    return prompt_id, wait_for_history(comfy, api, prompt_id, deadline)


def run(api: dict, server: str = DEFAULT_SERVER, out="comfy_outputs", timeout: float = 3600, log=None) -> list[Path]:
    """Check, queue and follow an API workflow; the files it saved, downloaded into `out`."""
    log = log or (lambda text: None)
    comfy = Comfy(server)
    check_on(comfy, api)
    saved = download_outputs(comfy, execute(comfy, api, timeout, log)[1], out)
    if not saved:
        raise ClientError("the prompt finished but saved no output file (does the workflow end in a Save node?)")
    return saved


def generate(prompt: str | None = None, seed: int | None = None, workflow: str = "t2v_lightning",
             server: str = DEFAULT_SERVER, out="comfy_outputs", timeout: float = 3600, log=None,
             **overrides) -> list[Path]:
    """Make a clip: the shipped workflow (a name, or an API-format file) with `prompt`, `seed` and any override of
    apply_overrides (negative, frames, size, steps, ckpt, motion_module, cfg, fps, format, schedule). Returns the
    saved files; raises ClientError (.status 1 or 2, as the exit codes) if anything fails."""
    api = apply_overrides(load_workflow(workflow), prompt=prompt, seed=seed, **overrides)
    return run(api, server=server, out=out, timeout=timeout, log=log)


# --- command line --------------------------------------------------------------------------------------------------

OVERRIDES = ("prompt", "negative", "seed", "frames", "size", "steps", "ckpt", "motion_module", "cfg", "fps", "format",
             "schedule")


def run_many(apis: list[dict], servers: list[str], out="comfy_outputs", timeout: float = 3600,
             log=None) -> list[list[Path]]:
    """Run API workflows over several ComfyUI servers (one per GPU or machine): each server takes the next workflow
    when it has finished its last, so a fast server does more; each server's own queue holds the work. The saved
    files of each workflow, in the order given; the first failure is raised once the others have stopped."""
    log = log or (lambda text: None)
    todo = list(enumerate(apis))
    results: list = [None] * len(apis)
    failures: list[ClientError] = []
    lock = threading.Lock()

    def worker(server: str) -> None:
        comfy, checked = Comfy(server), False
        while True:
            with lock:
                if not todo or failures:
                    return
                index, api = todo.pop(0)
            try:
                if not checked:
                    check_on(comfy, api)
                    checked = True
                saved = download_outputs(comfy, execute(comfy, api, timeout, log)[1], out)
                if not saved:
                    raise ClientError("the prompt finished but saved no output file")
                results[index] = saved
            except ClientError as e:
                with lock:
                    failures.append(ClientError(f"{comfy.host}:{comfy.port}: {e}", e.status))
                return

    threads = [threading.Thread(target=worker, args=(server,), daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def queue_command(args) -> int:
    api = apply_overrides(load_workflow(args.workflow), **{k: getattr(args, k) for k in OVERRIDES})
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    servers = [s.strip() for s in args.server.split(",") if s.strip()]
    if args.count < 1:
        raise ClientError(f"--count {args.count}: give 1 or more", 2)
    if args.count == 1 and len(servers) == 1:
        for path in run(api, server=servers[0], out=args.out, timeout=args.timeout, log=log):
            print(path)
        return 0
    # A batch: one clip per seed, seed, seed + 1, ... (the workflow's own seed when --seed is not given).
    first = args.seed if args.seed is not None else next(
        (n["inputs"][k] for n in api.values() for k in SEED_INPUTS if isinstance(n["inputs"].get(k), int)), 0)
    batch = [apply_overrides(api, seed=first + i, windows=False) for i in range(args.count)]
    for saved in run_many(batch, servers, out=args.out, timeout=args.timeout, log=log):
        for path in saved:
            print(path)
    return 0


def write_playlists(out: Path, segments: list[str]) -> None:
    """playlist.m3u (players such as VLC and mpv play the segments back to back) and stream.ffconcat (ffmpeg and PyAV
    read the segments as one clip: av.open("stream.ffconcat", format="concat")), each replaced whole."""
    for name, text in (("playlist.m3u", "#EXTM3U\n" + "".join(f"{s}\n" for s in segments)),
                       ("stream.ffconcat", "ffconcat version 1.0\n" + "".join(f"file '{s}'\n" for s in segments))):
        partial = out / f".{name}.partial"
        partial.write_text(text, encoding="utf-8")
        partial.replace(out / name)


def stream_prompt(args, current: str | None) -> str | None:
    """The prompt for the next chunk: the --prompt-file's text as it is now (edit it while the stream runs), else
    --prompt; an empty or unreadable file keeps the current prompt."""
    if not args.prompt_file:
        return args.prompt
    try:
        text = Path(args.prompt_file).read_text(encoding="utf-8").strip()
    except OSError as e:
        if current is None:
            raise ClientError(f"--prompt-file {args.prompt_file}: {e.strerror}", 2) from None
        return current
    return text or current


def stream_command(args) -> int:
    """Chunk after chunk (each continuing the last) until --chunks are made or Ctrl-C; each chunk's new frames are
    saved as a numbered MP4 segment in --out, with a playlist, as soon as ComfyUI has made it."""
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    base = apply_overrides(load_workflow(args.workflow), negative=args.negative, seed=args.seed,
                           frames=args.frames or STREAM_FRAMES, size=args.size, steps=args.steps, ckpt=args.ckpt,
                           motion_module=args.motion_module, cfg=args.cfg, fps=args.fps, format="mp4", windows=False)
    name = args.name or time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    comfy = Comfy(args.server)
    segments, previous, prompt, started = [], None, None, time.monotonic()
    index = 0
    while not args.chunks or index < args.chunks:
        prompt = stream_prompt(args, prompt)
        api = stream_chunk(apply_overrides(base, prompt=prompt, windows=False), index, previous, name)
        if index == 0:
            check_on(comfy, api)
        prompt_id, entry = execute(comfy, api, args.timeout, log)
        previous = saved_latent(entry)
        videos = [f for f in output_files(entry) if f["filename"].lower().endswith(".mp4")]
        if previous is None or len(videos) != 1:
            raise ClientError(f"stream chunk {index + 1} saved {[f['filename'] for f in output_files(entry)]} and "
                              f"latent {previous}: expected one MP4 and one latent")
        code, data = comfy.request(f"/view?{urllib.parse.urlencode(videos[0])}")
        if code != 200:
            raise ClientError(f"could not download {videos[0]['filename']}: /view answered {code}")
        segment = f"segment_{index + 1:05d}.mp4"
        (out / segment).write_bytes(data)
        segments.append(segment)
        write_playlists(out, segments)
        comfy.request("/history", {"delete": [prompt_id]})   # the server keeps nothing per chunk: memory stays flat
        if index == 0:
            log(f"first segment after {time.monotonic() - started:.1f} s")
        print(out / segment, flush=True)
        index += 1
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message):   # exit 2 with one line, like every other bad-argument error
        raise ClientError(f"{message} (see {self.prog} --help)", 2)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="client.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    q = sub.add_parser("queue", help="queue a workflow and download what it saves")
    names = ", ".join(shipped_names())
    q.add_argument("workflow", help=f"a shipped workflow's name ({names}) or an API-format workflow file")
    q.add_argument("--server", default=DEFAULT_SERVER, help=f"ComfyUI HOST:PORT (default {DEFAULT_SERVER}); several, "
                                                          f"comma-separated, share a --count batch")
    q.add_argument("--count", type=int, default=1, help="make this many clips, seeds --seed, --seed + 1, ... (spread "
                                                        "over the --server list)")
    q.add_argument("--prompt", help="positive prompt text")
    q.add_argument("--negative", help="negative prompt text (only used at cfg > 1)")
    q.add_argument("--seed", type=int, help="noise seed")
    q.add_argument("--frames", type=int, help=f"frame count (the empty latent's batch_size); past {WINDOWS_ABOVE} the "
                                              f"clip is made in context windows, as in {LONG_WORKFLOW}")
    q.add_argument("--size", help="WIDTHxHEIGHT or one number for a square, multiples of 8")
    q.add_argument("--steps", type=int, help="sampler steps (0 = the motion module's Lightning step count)")
    q.add_argument("--ckpt", help="SD1.5 checkpoint file name in models/checkpoints")
    q.add_argument("--motion-module", dest="motion_module",
                   help="motion module file name in models/animatediff_models (steps follow the file)")
    q.add_argument("--cfg", type=float, help="CFG scale (1.0 = negative prompt unused, one UNet pass per step)")
    q.add_argument("--fps", type=float, help="frame rate of the saved clip")
    q.add_argument("--format", choices=FORMATS, help="save as H.264 MP4 or animated WEBP (swaps the save node)")
    q.add_argument("--schedule", help='prompt travel keyframes, e.g. "0: a fox | 24: a wolf" (needs a '
                                      f"{PROMPT_TRAVEL} node)")
    q.add_argument("--out", default="comfy_outputs", help="folder to save outputs in (default ./comfy_outputs)")
    q.add_argument("--timeout", type=float, default=3600, help="give up waiting after this many seconds")
    q.add_argument("--quiet", action="store_true", help="print only the saved file paths")
    s = sub.add_parser("stream", help="make a clip that goes on: chunk after chunk, each continuing the last, saved as "
                                      "numbered MP4 segments with a playlist as each is made")
    s.add_argument("workflow", nargs="?", default="t2v_lightning",
                   help="a text-to-video workflow with one Lightning sampler (default t2v_lightning)")
    s.add_argument("--server", default=DEFAULT_SERVER, help=f"ComfyUI HOST:PORT (default {DEFAULT_SERVER})")
    prompts = s.add_mutually_exclusive_group()
    prompts.add_argument("--prompt", help="positive prompt text for every chunk")
    prompts.add_argument("--prompt-file", help="a text file read before each chunk: edit it while the stream runs "
                                               "to change the prompt (the motion goes on across the change)")
    s.add_argument("--negative", help="negative prompt text (only used at cfg > 1)")
    s.add_argument("--seed", type=int, help="noise seed (the same for every chunk: each frame's noise follows its "
                                            "place in the stream)")
    s.add_argument("--frames", type=int, help=f"frames per chunk, the {STREAM_OVERLAP} carried over included "
                                              f"(default {STREAM_FRAMES})")
    for flag, kind, text in (("--size", str, "WIDTHxHEIGHT or one number, multiples of 8"),
                             ("--steps", int, "sampler steps (0 = the motion module's)"),
                             ("--ckpt", str, "SD1.5 checkpoint file name"), ("--cfg", float, "CFG scale"),
                             ("--fps", float, "frame rate of the segments")):
        s.add_argument(flag, type=kind, help=text)
    s.add_argument("--motion-module", dest="motion_module", help="motion module file name (steps follow the file)")
    s.add_argument("--chunks", type=int, default=0, help="stop after this many chunks (default 0: until Ctrl-C)")
    s.add_argument("--name", help="the segments' name on the server (default: the start time)")
    s.add_argument("--out", default="stream", help="folder for the segments and the playlists (default ./stream)")
    s.add_argument("--timeout", type=float, default=3600, help="give up on a chunk after this many seconds")
    s.add_argument("--quiet", action="store_true", help="print only the segment paths")
    return p


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
        return {"queue": queue_command, "stream": stream_command}[args.command](args)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print("error: interrupted (the prompt may still be running on the server)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
