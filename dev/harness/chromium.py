"""Headless Debian Chromium driven over the DevTools protocol, with the client's stdlib websocket.

Enough for the browser check: open a page, evaluate JavaScript (awaiting promises), collect console errors, warnings
(with the whole call stack's scripts) and uncaught exceptions, take screenshots. The browser is a process we start
and stop by its PID; it gets a fresh profile and the flags that keep it off the network (this machine has none but
loopback).
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tools.client import WebSocket

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--remote-debugging-port=0"]


class JavaScriptError(RuntimeError):
    pass


class Chromium:
    def __init__(self, width: int = 1600, height: int = 1000, scale: float = 2, executable: str = CHROMIUM):
        self.profile = Path(tempfile.mkdtemp(prefix="adl-chromium-"))
        self.proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.events: list[dict] = []
        self._next_id = 0
        port = self._devtools_port()
        page = self._page_target(port)
        self.ws = WebSocket("127.0.0.1", port, page["webSocketDebuggerUrl"].split(str(port), 1)[1], timeout=60)
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=scale,
                  mobile=False)

    def _devtools_port(self, timeout: float = 30) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    @staticmethod
    def _page_target(port: int) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
        if not pages:
            raise RuntimeError("chromium has no page target")
        return pages[0]

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        message_id = self._next_id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            _, payload = self.ws.recv()
            message = json.loads(payload)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, timeout: float = 60):
        """Value of a JavaScript expression (a promise is awaited); raises JavaScriptError if it throws."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=int(timeout * 1000))
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise JavaScriptError(text)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str = "") -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.evaluate(expression):
                    return
            except JavaScriptError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"waited {timeout}s for {what or expression}")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self, path: Path, clip: tuple[float, float, float, float] | None = None) -> None:
        """PNG of the page, or of the (x0, y0, x1, y1) CSS-pixel box; at the device scale (crisp text)."""
        params = {"format": "png"}
        if clip:
            x0, y0, x1, y1 = clip
            params["clip"] = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0, "scale": 1}
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))

    def save_page_png(self, path: Path, max_side: int) -> None:
        """The whole page as a README picture: scaled to fit max_side, 256 colours (small files in the repo)."""
        from PIL import Image   # ComfyUI's own dependency, present wherever the host tier runs

        raw = path.with_suffix(".raw.png")
        self.screenshot(raw)
        image = Image.open(raw).convert("RGB")
        raw.unlink()
        image.thumbnail((max_side, max_side), Image.LANCZOS)
        image.quantize(256).save(path, optimize=True)

    def console_errors(self) -> list[str]:
        """Console errors and uncaught exceptions seen so far, as text with their source."""
        return self.console_messages(("error", "assert"))

    def console_messages(self, levels=("error", "assert")) -> list[str]:
        """Console calls and browser log entries of these levels ("error", "assert", "warning", ...) and uncaught
        exceptions (always), as text followed by every script URL on the call's stack, so a message the frontend
        prints on behalf of an extension's call (a deprecation warning) names the extension's file too."""
        out = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in levels:
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                urls = list(dict.fromkeys(f["url"] for f in params.get("stackTrace", {}).get("callFrames", [])))
                out.append(f"{args} @ {' < '.join(urls) or '?'}")
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                urls = [f["url"] for f in details.get("stackTrace", {}).get("callFrames", [])]
                urls = list(dict.fromkeys([details.get("url", "?")] + urls))
                out.append(f"{details.get('exception', {}).get('description') or details.get('text')} "
                           f"@ {' < '.join(urls)}")
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") in levels:
                entry = params["entry"]
                urls = [f["url"] for f in entry.get("stackTrace", {}).get("callFrames", [])]
                urls = list(dict.fromkeys([entry.get("url", "?")] + urls))
                out.append(f"{entry.get('text')} @ {' < '.join(urls)}")
        return out

    def close(self) -> None:
        try:
            self.ws.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Tab(Chromium):
    """Another tab of a running Chromium: its own page target and DevTools connection, the same browser (cookies,
    local storage). close() really closes it, as a user closing the tab would."""

    def __init__(self, browser: Chromium, width: int = 1000, height: int = 1000):
        self.port = int((browser.profile / "DevToolsActivePort").read_text().split()[0])
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=30) as r:
            target = json.loads(r.read())
        self.target, self.events, self._next_id = target["id"], [], 0
        self.ws = WebSocket("127.0.0.1", self.port, target["webSocketDebuggerUrl"].split(str(self.port), 1)[1],
                            timeout=60)
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def close(self) -> None:
        try:
            self.ws.close()
        except OSError:
            pass
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/close/{self.target}", timeout=30):
            pass


def offline_browser(width: int, height: int) -> Chromium:
    """A headless Chromium at scale 1 that reaches only loopback (the frontend would ask api.comfy.org for news)."""
    browser = Chromium(width=width, height=height, scale=1)
    browser.call("Network.enable")
    browser.call("Network.setBlockedURLs", urls=["https://*", "wss://*"])
    return browser
