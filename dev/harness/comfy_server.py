"""Run a real ComfyUI (COMFYUI_PATH) as a subprocess on 127.0.0.1 with this pack loaded, and queue prompts to it.

Used by the host-tier tests and by dev/benchmarks/. Everything the server writes lives in a temporary base directory;
model files are symlinked in from the fixture cache under the names the shipped workflows use.

ComfyUI 0.30 imports torchaudio at start-up. Where the server's Python cannot import it (no torchaudio wheel matches
every torch build), the server gets an import-only stand-in on its PYTHONPATH: ADL_TORCHAUDIO_STUB if set, else one
the harness writes into the fixture cache (audio nodes are core's, not this pack's).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACK_DIR_NAME = "ComfyUI-AnimateDiff-Lightning"
MEMORY_NODE_NAME = "adlightning-benchmark-memory"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


_UNAVAILABLE = 'def __getattr__(name):\n    raise RuntimeError(f"torchaudio stand-in: {name} is not available")\n'
STAND_IN = {  # an import-only torchaudio: ComfyUI 0.30 imports it at start-up; the pack has no audio node
    "__init__.py": '"""Import-only stand-in for torchaudio (host tier): lets ComfyUI import its audio modules; any '
                   'audio node that calls into it fails loudly."""\n__version__ = "0.0.0+stand-in"\n'
                   'from . import functional, transforms  # noqa: E402,F401\n',
    "functional.py": _UNAVAILABLE,
    "transforms.py": _UNAVAILABLE,
}


def torchaudio_stand_in(python: str) -> str | None:
    """A folder to put on the path when `python` cannot import torchaudio (no wheel matches every torch build):
    ADL_TORCHAUDIO_STUB if set, else a stand-in the harness writes into the fixture cache. None when torchaudio
    imports."""
    if subprocess.run([python, "-c", "import torchaudio"], capture_output=True).returncode == 0:
        return None
    stub = os.environ.get("ADL_TORCHAUDIO_STUB")
    if stub:
        if not (Path(stub) / "torchaudio" / "__init__.py").is_file():
            raise FileNotFoundError(f"ADL_TORCHAUDIO_STUB={stub} holds no torchaudio/__init__.py; point it at the "
                                    "folder that contains the stand-in torchaudio package, or unset it")
        return stub
    from .motion_files import cache_dir
    folder = cache_dir() / "torchaudio-stand-in"
    for name, text in STAND_IN.items():
        path = folder / "torchaudio" / name
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return str(folder)


def server_env(python: str) -> dict[str, str]:
    """The server's environment: ours, unbuffered, plus the torchaudio stand-in where torchaudio does not import."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stub = torchaudio_stand_in(python)
    if stub:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (stub, env.get("PYTHONPATH")) if p)
    return env


class PromptFailed(RuntimeError):
    def __init__(self, message: str, detail: dict):
        super().__init__(message)
        self.detail = detail


class ComfyServer:
    """A ComfyUI process we started (and only we stop, by its PID)."""

    def __init__(self, comfy_path: str, models: dict[str, dict[str, Path]], extra_args=(), python=sys.executable,
                 cpu: bool | None = None, memory_route: bool = False, pack: Path = REPO):
        """cpu: pass --cpu; None (default) means ADL_COMFY_CPU if set ("1"/"0"), else CPU only where torch sees no
        CUDA device, so the same harness runs on a GPU machine. memory_route: also load the benchmark-only custom node
        that serves /adlightning/memory (memory_node/). pack: the pack's folder to load (another checkout of it,
        e.g. to compare with an older version)."""
        self.comfy_path = Path(comfy_path)
        self.base = Path(tempfile.mkdtemp(prefix="adl-comfy-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for folder, files in models.items():
            (self.base / "models" / folder).mkdir(parents=True, exist_ok=True)
            for name, src in files.items():
                os.symlink(src, self.base / "models" / folder / name)
        (self.base / "custom_nodes").mkdir(exist_ok=True)
        os.symlink(Path(pack).resolve(), self.base / "custom_nodes" / PACK_DIR_NAME)
        if memory_route:
            os.symlink(Path(__file__).resolve().parent / "memory_node", self.base / "custom_nodes" / MEMORY_NODE_NAME)
        self.log_path = self.base / "server.log"
        if cpu is None:
            cpu = os.environ["ADL_COMFY_CPU"] != "0" if os.environ.get("ADL_COMFY_CPU") else not _cuda_available()
        self.cpu = cpu
        cmd = [python, "main.py", *(["--cpu"] if cpu else []), "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--database-url", "sqlite:///:memory:",
               *self._version_flags(), "--disable-auto-launch", *extra_args]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.comfy_path, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=server_env(python))

    def _version_flags(self) -> list[str]:
        """Flags only some ComfyUI versions know (an unknown flag stops ComfyUI at start-up). 0.14.1 scans model
        folders into its asset database unless told not to; 0.30 has the assets system off unless enabled."""
        options = (self.comfy_path / "comfy" / "cli_args.py").read_text()
        return ["--disable-assets-autoscan"] if '"--disable-assets-autoscan"' in options else []

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                hint = ("\n(torchaudio does not import, and the stand-in did not help: see docs/testing.md)"
                        if "No module named 'torchaudio'" in self.log() else "")
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log()[-4000:]}{hint}")
            try:
                self.get("/system_stats", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer within {timeout}s:\n{self.log()[-4000:]}")

    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict, timeout: float = 30):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            body = e.read() or b"{}"
            try:
                return e.code, json.loads(body)
            except ValueError:   # aiohttp's own answers (404, 405 for a route the server lacks) are plain text
                return e.code, {"error": body.decode(errors="replace")}

    def queue(self, prompt: dict, client_id: str | None = None) -> dict:
        """POST /prompt; returns the server's answer (prompt_id, node_errors) or raises PromptFailed. client_id: the
        websocket client that gets the prompt's progress messages."""
        status, answer = self.post("/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})
        if status != 200 or answer.get("node_errors"):
            raise PromptFailed(f"prompt rejected ({status}): {json.dumps(answer)[:2000]}", answer)
        return answer

    def wait(self, prompt_id: str, timeout: float = 900) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                history = self.get(f"/history/{prompt_id}")
            except urllib.error.HTTPError:
                raise
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                # A server sampling on every core (0.30 on 2 CPU cores, with other jobs) can take longer than one
                # request's timeout to answer; only the prompt's own deadline, or the server's death, ends the wait.
                history = {}
            if prompt_id in history:
                entry = history[prompt_id]
                status = entry.get("status", {})
                if status.get("status_str") == "error" or not status.get("completed", True):
                    messages = [m for m in status.get("messages", []) if m[0] == "execution_error"]
                    raise PromptFailed(f"prompt failed: {json.dumps(messages)[:3000]}", entry)
                return entry
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running the prompt:\n{self.log()[-4000:]}")
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def run(self, prompt: dict, timeout: float = 900) -> dict:
        answer = self.queue(prompt)
        assert answer.get("node_errors") == {}, answer
        return self.wait(answer["prompt_id"], timeout)

    def output_files(self, entry: dict, kind: str = "images") -> list[Path]:
        files = []
        for node_output in entry.get("outputs", {}).values():
            for item in node_output.get(kind, []):
                files.append(self.output_dir / item.get("subfolder", "") / item["filename"])
        return files

    def _status_bytes(self, field: str) -> int:
        """A size field of the server process's /proc status (Linux), in bytes; 0 if absent."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def rss_bytes(self) -> int:
        """Current resident set size of the server process."""
        return self._status_bytes("VmRSS")

    def peak_rss_bytes(self) -> int:
        """Peak resident set size since the process started or reset_peak_rss."""
        return self._status_bytes("VmHWM")

    def reset_peak_rss(self) -> None:
        """Restart VmHWM from the current RSS (Linux >= 4.0), so the next peak belongs to what runs next."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        self.wait_ready()
        return self

    def __exit__(self, *exc):
        self.stop()
