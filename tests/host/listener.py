"""Watch a ComfyServer while it runs a prompt: its websocket messages (progress per node, interrupts), its memory,
and the latent one SaveLatent node wrote (a prompt may hold several).

Used by the context-window host tests and benchmarks/window_host.py.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

from tests.host.comfy_server import ComfyServer, PromptFailed
from tests.host.conftest import read_latents


def saved_latent(server: ComfyServer, entry: dict, node: str):
    """The latent that SaveLatent node `node` wrote in the finished prompt `entry`."""
    return read_latents(server, {"outputs": {node: entry["outputs"][node]}})[0]


class Listener:
    """The server's websocket messages for one client id, and (poll_rss) the largest RSS seen while each node ran."""

    def __init__(self, server: ComfyServer, poll_rss: bool = False):
        self.server = server
        self.client_id = uuid.uuid4().hex
        self.messages: list[dict] = []
        self.rss_by_node: dict[str, int] = {}
        self._node = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)]
        if poll_rss:
            self._threads.append(threading.Thread(target=self._poll, daemon=True))
        for thread in self._threads:
            thread.start()
        assert self._ready.wait(30), "websocket did not connect"

    async def _listen(self):
        import aiohttp   # ComfyUI's dependency, not the unit tier's: imported here so CI can collect the host tests
        url = self.server.url.replace("http://", "ws://") + f"/ws?clientId={self.client_id}"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            self._ready.set()
            while not self._stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if msg.type == aiohttp.WSMsgType.TEXT:
                    message = json.loads(msg.data)
                    if message.get("type") == "executing":
                        self._node = message["data"].get("node")
                    self.messages.append(message)
                elif msg.type != aiohttp.WSMsgType.BINARY:
                    return

    def _poll(self):
        while not self._stop.is_set():
            node = self._node
            if node is not None:
                self.rss_by_node[node] = max(self.rss_by_node.get(node, 0), self.server.rss_bytes())
            time.sleep(0.05)

    def queue(self, prompt: dict) -> str:
        status, answer = self.server.post("/prompt", {"prompt": prompt, "client_id": self.client_id})
        if status != 200 or answer.get("node_errors"):
            raise PromptFailed(f"prompt rejected ({status}): {json.dumps(answer)[:2000]}", answer)
        return answer["prompt_id"]

    def progress(self, node: str) -> list[tuple[int, int]]:
        """(value, max) of every progress message the node sent, in order."""
        return [(m["data"]["value"], m["data"]["max"]) for m in self.messages
                if m.get("type") == "progress" and m["data"].get("node") == node]

    def close(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
