"""A study on the rating server: its checked manifest, each rater's blind view of it, the votes as they arrive,
closing.

Pure (no aiohttp): study/server.py turns requests into these calls and the errors into HTTP statuses
(StudyInputError 400, NotRevealed and NotOrganiser 403, StudyClosed 409, StudyFull 429).

What a rater gets (`session`) is their pairs in their own order, each with a prompt and two clip tokens, left and
right, and their own votes so far in left/right terms: nothing in it depends on which configuration is which except
through keyed hashes of the study secret (blind.py). Votes are stored in A/B terms with the side shown; a rater's
later vote on the same pair and criterion replaces the earlier one when counted (stats.latest_votes).

Bounds keep votes.jsonl from growing without end: at most `max_raters` raters, and each at most a few times as many
vote lines as the study has questions (changing one's mind is fine, flooding is not).
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import unicodedata
from collections import Counter, OrderedDict
from pathlib import Path

from . import report as study_report
from .blind import clip_token, left_side, pair_order, rater_key
from .manifest import MANIFEST, SIDES, StudyError, check_clip, organiser_ok, read_manifest
from .stats import Vote, latest_votes
from .votes import VoteLog

CLOSED = "closed.json"
PAGE_CHOICES = ("left", "right", "tie")
MAX_RATER = 64
DEFAULT_MAX_RATERS = 100
TOKEN = re.compile(r"[0-9a-f]{48}")


class StudyInputError(StudyError):
    """A request the store refuses (bad field): HTTP 400. The message starts with the field's name."""


class StudyClosed(StudyError):
    """A vote after the study was closed: HTTP 409."""


class NotRevealed(StudyError):
    """The configuration names or the report before the study is closed: HTTP 403."""


class NotOrganiser(StudyError):
    """Closing without the organiser secret: HTTP 403."""


class StudyFull(StudyError):
    """A vote past the bound on raters or on one rater's vote lines: HTTP 429."""


def _shown(value) -> str:
    return repr(value)[:80] if isinstance(value, str) else type(value).__name__


def check_rater(rater) -> str:
    """The rater's name, trimmed and NFC-normalised; StudyInputError for anything else than 1-64 printable
    characters (a lone surrogate, a control character, a non-string)."""
    if not isinstance(rater, str):
        raise StudyInputError(f"rater: give your name as text, got {_shown(rater)}")
    try:
        rater.encode("utf-8")
    except UnicodeEncodeError:
        raise StudyInputError("rater: the name is not valid text (it holds a lone surrogate)") from None
    name = unicodedata.normalize("NFC", rater.strip())
    if not 0 < len(name) <= MAX_RATER or any(unicodedata.category(c)[0] == "C" for c in name):
        raise StudyInputError(f"rater: name {_shown(rater)}: give 1-{MAX_RATER} printable characters (your name or "
                              f"initials)")
    return name


class StudyStore:
    def __init__(self, folder, max_raters: int = DEFAULT_MAX_RATERS):
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        if manifest is None:
            raise StudyError(f"no {MANIFEST}: not a study folder (make one with tools/study.py generate)")
        if manifest["id"] != self.folder.name:
            raise StudyError(f"{MANIFEST}: id {manifest['id']!r} is not the folder's name {self.folder.name!r}: "
                             f"give the folder its study's name back")
        for pair in manifest["pairs"]:
            for side in SIDES:
                check_clip(self.folder, pair["files"][side])
        self.manifest = manifest
        self.id = manifest["id"]
        self._secret = manifest["secret"]
        self.criteria = tuple(manifest["criteria"])
        self.pairs = {p["id"]: p for p in manifest["pairs"]}
        self.max_raters = max_raters
        self.max_lines_per_rater = max(100, 4 * len(self.pairs) * len(self.criteria))
        self._tokens: OrderedDict[str, dict[str, tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()   # aiohttp handlers share one loop; the CLI and tests may share a store
        self._log = VoteLog(self.folder)
        self._votes: list[Vote] = []
        self._lines = Counter()
        for row in self._log.read():
            vote = self._vote_of(row)
            if vote is not None:
                self._votes.append(vote)
                self._lines[vote.rater] += 1

    def _vote_of(self, row: dict) -> Vote | None:
        rater, pair, criterion, choice = (row.get(k) for k in ("rater", "pair", "criterion", "choice"))
        if isinstance(rater, str) and isinstance(pair, str) and pair in self.pairs and criterion in self.criteria \
                and choice in ("A", "B", "tie"):
            return Vote(rater, pair, self.pairs[pair]["theme"], criterion, choice)
        return None

    # --- state ---------------------------------------------------------------------------------------------------
    @property
    def closed(self) -> dict | None:
        path = self.folder / CLOSED
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            state = None
        return state if isinstance(state, dict) else {}

    def votes(self) -> list[Vote]:
        """Every vote counted: the latest of each rater on each pair and criterion."""
        with self._lock:
            return latest_votes(self._votes)

    def raters(self) -> list[str]:
        with self._lock:
            return sorted(self._lines)

    # --- what a rater sees --------------------------------------------------------------------------------------
    def _layout(self, key: str) -> dict[str, tuple[str, str]]:
        """{token: (pair, side)} of every clip for the rater with this key (a small cache: tokens are per rater)."""
        with self._lock:
            table = self._tokens.get(key)
            if table is None:
                table = {clip_token(self._secret, key, pid, side): (pid, side) for pid in self.pairs for side in SIDES}
                self._tokens[key] = table
                while len(self._tokens) > 512:
                    self._tokens.popitem(last=False)
            else:
                self._tokens.move_to_end(key)
            return table

    def clip_name(self, token) -> str | None:
        """The clip file (relative to the study folder) a token names, or None."""
        if not isinstance(token, str) or TOKEN.fullmatch(token) is None:
            return None
        found = self._layout(token[:16]).get(token)
        return self.pairs[found[0]]["files"][found[1]] if found else None

    def _shown_choice(self, rater: str, vote: Vote) -> str:
        if vote.choice == "tie":
            return "tie"
        return "left" if vote.choice == left_side(self._secret, rater, vote.pair) else "right"

    def session(self, rater) -> dict:
        """The rater's pairs in their order, each with its two clips as left/right tokens and the rater's votes so far
        in left/right terms, and how many pairs they have finished (every criterion answered)."""
        rater = check_rater(rater)
        key = rater_key(self._secret, rater)
        mine: dict[str, dict[str, str]] = {}
        for vote in self.votes():
            if vote.rater == rater:
                mine.setdefault(vote.pair, {})[vote.criterion] = self._shown_choice(rater, vote)
        pairs = []
        for pid in pair_order(self._secret, rater, self.pairs):
            left = left_side(self._secret, rater, pid)
            right = "B" if left == "A" else "A"
            pairs.append({"pair": pid, "prompt": self.pairs[pid]["prompt"],
                          "left": clip_token(self._secret, key, pid, left),
                          "right": clip_token(self._secret, key, pid, right), "votes": mine.get(pid, {})})
        finished = sum(1 for p in pairs if len(p["votes"]) == len(self.criteria))
        return {"study": self.id, "rater": rater, "criteria": list(self.criteria), "choices": list(PAGE_CHOICES),
                "pairs": pairs, "finished": finished, "closed": self.closed is not None}

    # --- votes ---------------------------------------------------------------------------------------------------
    def record(self, rater, pair, criterion, choice) -> dict:
        """Store one vote given on the page (choice left/right/tie), un-blinded to A/B. Returns the stored row."""
        rater = check_rater(rater)
        if not isinstance(pair, str) or pair not in self.pairs:
            raise StudyInputError(f"pair: unknown pair {_shown(pair)} in study {self.id}: send a pair id from the "
                                  f"session; reload the page")
        if not isinstance(criterion, str) or criterion not in self.criteria:
            raise StudyInputError(f"criterion: unknown criterion {_shown(criterion)}: give one of "
                                  f"{', '.join(self.criteria)}")
        if not isinstance(choice, str) or choice not in PAGE_CHOICES:
            raise StudyInputError(f"choice: {_shown(choice)} is not one of {', '.join(PAGE_CHOICES)}")
        if self.closed is not None:
            raise StudyClosed(f"study {self.id} is closed: its votes are final and no more are taken")
        left = left_side(self._secret, rater, pair)
        ab = "tie" if choice == "tie" else left if choice == "left" else ("B" if left == "A" else "A")
        row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rater": rater, "pair": pair, "criterion": criterion,
               "choice": ab, "shown": choice}
        with self._lock:
            if rater not in self._lines and len(self._lines) >= self.max_raters:
                raise StudyFull(f"study {self.id} has its {self.max_raters} raters already (the organiser can allow "
                                f"more with serve --max-raters)")
            if self._lines[rater] >= self.max_lines_per_rater:
                raise StudyFull(f"rater: {rater!r} has cast {self.max_lines_per_rater} votes (changes included), the "
                                f"most one rater may; no more are taken for this name")
            self._log.append(row)
            self._votes.append(Vote(rater, pair, self.pairs[pair]["theme"], criterion, ab))
            self._lines[rater] += 1
        return row

    # --- closing and revealing ----------------------------------------------------------------------------------
    def check_organiser(self, secret) -> None:
        if not organiser_ok(self.manifest, secret):
            raise NotOrganiser(f"organiser: closing study {self.id} needs the organiser secret printed when it was "
                               f"made (or tools/study.py close on the study's machine)")

    def close(self) -> dict:
        """Close the study (idempotent): no more votes; the configurations and the report become visible, and the
        report is written into the folder."""
        with self._lock:
            if self.closed is None:
                state = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "raters": len(self._lines),
                         "votes": len(latest_votes(self._votes))}
                tmp = self.folder / f".{CLOSED}.tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(json.dumps(state) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                tmp.replace(self.folder / CLOSED)
        study_report.write(self.folder, self.report())
        return self.closed

    def configs(self) -> dict:
        if self.closed is None:
            raise NotRevealed(f"study {self.id} is still open: the configurations are shown once it is closed")
        return {side: self.manifest["configs"][side] for side in SIDES}

    def report(self) -> dict:
        return study_report.build(self.manifest, self.votes())

    def summary(self) -> dict:
        """What anyone may see at any time: the study, its size, how many raters, whether it is closed."""
        return {"id": self.id, "pairs": len(self.pairs), "raters": len(self.raters()),
                "closed": self.closed is not None}
