"""A study's vote log, votes.jsonl: one JSON object a line, appended as each vote arrives and fsynced before the vote
is acknowledged, so an acknowledged vote survives the server being killed.

What a kill can leave is a torn last line (no newline at its end). Reading skips it; the next append first cuts the
file back to the end of the last whole line, so the log is whole again. A damaged line elsewhere (a disk error, an
edit by hand) is skipped and counted, never a reason to refuse the study.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

VOTES = "votes.jsonl"


class VoteLog:
    def __init__(self, folder):
        self.path = Path(folder) / VOTES
        self.whole = 0          # bytes up to the end of the last whole line: where the next line goes
        self.torn = False       # a partial last line is there (cut off on the next append)
        self.skipped = 0        # whole lines that are not JSON objects

    def read(self) -> list[dict]:
        """Every whole line that is a JSON object, in order (the torn tail and damaged lines skipped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        self.whole = data.rfind(b"\n") + 1
        self.torn = self.whole < len(data)
        rows, self.skipped = [], 0
        for line in data[:self.whole].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                row = None
            if isinstance(row, dict):
                rows.append(row)
            else:
                self.skipped += 1
        return rows

    def append(self, row: dict) -> None:
        """Write one line and fsync it (and the folder, when the file is new)."""
        line = (json.dumps(row, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            if self.torn:
                os.ftruncate(fd, self.whole)   # the torn tail of a killed write goes; whole lines stay
                self.torn = False
            end = self.whole = os.lseek(fd, 0, os.SEEK_END)
            try:
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                os.fsync(fd)
            except BaseException:
                self.torn = True               # part of the line may be there: cut on the next append
                raise
        finally:
            os.close(fd)
        self.whole = end + len(line)
        if new:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
