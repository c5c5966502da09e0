"""Small builders for the A/B study tests: a minimal MP4 box structure with ComfyUI-style metadata, a study folder,
and the study's rating server running on loopback in a thread (the real aiohttp server, study/server.py)."""
from __future__ import annotations

import asyncio
import json
import struct
import threading
import urllib.error
import urllib.request
from pathlib import Path

from adlightning.study.manifest import new_clip_name, new_manifest, organiser_hash


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def fake_mp4(text: str = '{"motion_module": "animatediff_lightning_4step_comfyui.safetensors"}',
             frames: bytes = b"\x00\x01frame-data") -> bytes:
    """ftyp, moov (mvhd, trak with its own udta, udta/meta/ilst holding the workflow text), mdat: the boxes ComfyUI's
    Save Video writes, minus the sample tables."""
    ilst = box(b"ilst", box(b"----", text.encode()))
    udta = box(b"udta", box(b"meta", b"\x00\x00\x00\x00" + ilst))
    trak = box(b"trak", box(b"tkhd", bytes(20)) + box(b"udta", box(b"name", b"lightning track")))
    return box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41") + box(b"moov", box(b"mvhd", bytes(100)) + trak + udta) \
        + box(b"mdat", frames)


CONFIGS = {"A": {"name": "Lightning 4-step", "workflow": "t2v_lightning", "overrides": {"steps": 4}},
           "B": {"name": "AnimateDiff v2 25 steps", "workflow": "t2v_lightning", "overrides": {"steps": 25}}}
ORGANISER = "organiser-secret-of-the-test-study"


def make_study(folder: Path, n_pairs: int = 4, themes=("sports", "nature"), seed: int = 11) -> dict:
    """A complete study folder (manifest and clip files) without the generator; its id is the folder's name, its
    organiser secret ORGANISER. Each clip's frame data names its pair and side, so a test can tell them apart."""
    manifest, _ = new_manifest(folder.name, seed, CONFIGS)
    manifest["organiser_sha256"] = organiser_hash(ORGANISER)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    for i in range(n_pairs):
        pid = f"p{i:03d}"
        files = {}
        for side in "AB":
            name = new_clip_name()
            (folder / name).write_bytes(fake_mp4(frames=f"frames of {pid} {side}".encode()))
            files[side] = name
        manifest["pairs"].append({"id": pid, "index": i, "prompt": f"prompt {i}", "theme": themes[i % len(themes)],
                                  "seed": seed + i, "files": files})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def side_of(manifest: dict, data: bytes) -> tuple[str, str]:
    """(pair, side) of a served clip of a make_study study, read from its frame data."""
    text = data[data.index(b"frames of "):].decode()
    _, _, pair, side = text.split()
    return pair, side


def fetch(url: str, body=None, headers=None, raw: bytes | None = None, method=None):
    """(status, parsed JSON or bytes, response headers) of one request. body: sent as JSON with Content-Type
    application/json unless headers say otherwise; raw: sent as is."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    sent.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, payload, got = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, payload, got = e.code, e.read(), e.headers
    if (got.get("Content-Type") or "").startswith("application/json"):
        payload = json.loads(payload)
    return status, payload, got


class RunningServer:
    """study/server.py's StudyServer on 127.0.0.1 (a free port) in a thread with its own event loop."""

    def __init__(self, folder, **options):
        from aiohttp import web
        from adlightning.study.server import StudyServer

        self.study_server = StudyServer(folder, **options)
        self._started, self._stop = threading.Event(), None

        async def main():
            runner = web.AppRunner(self.study_server.app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await self._stop.wait()
            await runner.cleanup()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the study server did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, path: str, body=None, headers=None, method=None, raw: bytes | None = None):
        return fetch(self.url + path, body, headers, raw, method)

    def stop(self):
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
