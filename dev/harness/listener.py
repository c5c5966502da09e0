"""Watch a ComfyServer while it runs a prompt: its websocket messages (progress per node, interrupts), its memory,
and the latent one SaveLatent node wrote (a prompt may hold several).

Used by the context-window host tests and dev/benchmarks/window_host.py.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid

from dev.harness.comfy_server import ComfyServer
from dev.harness.graphs import read_latents
from tools.client import WebSocket


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
        self._stop = threading.Event()
        # Connected before the caller queues anything, so no message of its prompt is missed.
        self._ws = WebSocket("127.0.0.1", server.port, f"/ws?clientId={self.client_id}", timeout=30)
        self._ws.settimeout(None)   # the reader blocks until close() shuts the socket down
        self._threads = [threading.Thread(target=self._listen, daemon=True)]
        if poll_rss:
            self._threads.append(threading.Thread(target=self._poll, daemon=True))
        for thread in self._threads:
            thread.start()

    def _listen(self):
        while True:
            try:
                opcode, data = self._ws.recv()
            except OSError:   # ConnectionError included: close() shut the socket down, or the server went away
                return
            if opcode == 8:
                return
            if opcode == 1:
                message = json.loads(data)
                if message.get("type") == "executing":
                    self._node = message["data"].get("node")
                self.messages.append(message)

    def _poll(self):
        while not self._stop.is_set():
            node = self._node
            if node is not None:
                self.rss_by_node[node] = max(self.rss_by_node.get(node, 0), self.server.rss_bytes())
            time.sleep(0.05)

    def queue(self, prompt: dict) -> str:
        return self.server.queue(prompt, self.client_id)["prompt_id"]

    def progress(self, node: str) -> list[tuple[int, int]]:
        """(value, max) of every progress message the node sent, in order."""
        return [(m["data"]["value"], m["data"]["max"]) for m in self.messages
                if m.get("type") == "progress" and m["data"].get("node") == node]

    def close(self):
        self._stop.set()
        try:
            self._ws.sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked reader
        except OSError:
            pass
        self._ws.sock.close()
        for thread in self._threads:
            thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
