"""For the study host tests: the study's rating server as the organiser runs it (`python -m tools.study serve`, a
process we start and stop by its PID, on a free loopback port); `fetch` is the unit tests' one HTTP call."""
from __future__ import annotations

import re
import subprocess
import sys
import threading

from dev.harness.comfy_server import REPO
from tests.unit.study_fixtures import fetch  # noqa: F401 (the host study tests import it from here)


class StudyServe:
    def __init__(self, folder, *options: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "tools.study", "serve", str(folder), "--port", "0",
                                      *options], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        first = self.proc.stdout.readline()
        found = re.search(r" on 127\.0\.0\.1:(\d+) ", first)
        if not found:
            self.proc.kill()
            raise RuntimeError(f"tools.study serve did not start: {first}{self.proc.stdout.read()}")
        self.url = f"http://127.0.0.1:{found.group(1)}"
        self.lines = [first]
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def get(self, path: str, **kw):
        return fetch(self.url + path, **kw)

    def post(self, path: str, body: dict, **kw):
        return fetch(self.url + path, body=body, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
