"""A study on the server: its manifest, the blind left/right layout of each rater, the votes as they arrive, closing.

Pure (no ComfyUI, no aiohttp): nodes/study_route.py turns requests into these calls and StudyInputError into HTTP 400
(StudyClosed into 409, NotRevealed into 403).

Blinding. The page only ever sees "left" and "right". Which of A/B is on the left for a rater and pair is fixed by a
hash of (study seed, rater, pair): reproducible from the manifest, different across raters, and balanced: each
rater's pairs are ordered by that hash and every other one gets A on the left, so a rater sees A on the left in half
their pairs (one more or less for an odd count), not merely about half. The order the pairs are shown in is a second
per-rater hash, so no pair is always rated first (tired or fresh). Clip URLs are opaque tokens (blind.clip_token).

Votes are appended to votes.jsonl as they come (nothing is lost when a tab closes), in A/B terms with the side shown;
a rater's later vote on the same pair and criterion replaces the earlier one when counted (stats.latest_votes), so
changing one's mind never counts twice.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

from .blind import clip_token
from .generate import MANIFEST, SIDES, StudyError
from .stats import CRITERIA, Vote, latest_votes

VOTES = "votes.jsonl"
CLOSED = "closed.json"
PAGE_CHOICES = ("left", "right", "tie")
MAX_RATER = 64


class StudyInputError(StudyError):
    """A request the store refuses (unknown pair, criterion, choice, bad rater name): HTTP 400."""


class StudyClosed(StudyError):
    """A vote after the study was closed: HTTP 409."""


class NotRevealed(StudyError):
    """The configuration names or the report before the study is closed: HTTP 403."""


def _hash(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def check_rater(rater) -> str:
    name = rater.strip() if isinstance(rater, str) else ""
    if not name or len(name) > MAX_RATER or any(ord(c) < 32 for c in name):
        raise StudyInputError(f"rater name {rater!r}: give 1-{MAX_RATER} printable characters (your name or initials)")
    return name


def left_sides(seed: int, rater: str, pairs: list[str]) -> dict[str, str]:
    """{pair: the side (A or B) shown on the left} for one rater: pairs ranked by hash(seed, rater, pair), A on the
    left at even ranks, so exactly half (rounded up) of a rater's pairs have A on the left."""
    ranked = sorted(pairs, key=lambda p: (_hash(seed, rater, p), p))
    return {p: "A" if i % 2 == 0 else "B" for i, p in enumerate(ranked)}


def pair_order(seed: int, rater: str, pairs: list[str]) -> list[str]:
    return sorted(pairs, key=lambda p: (_hash(seed, "order", rater, p), p))


def read_votes(folder, pairs: dict) -> list[Vote]:
    """Every vote line of a study folder's votes.jsonl (all of them; stats.latest_votes keeps the last of each)."""
    path = Path(folder) / VOTES
    if not path.exists():
        return []
    votes = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            votes.append(Vote(row["rater"], row["pair"], pairs[row["pair"]]["theme"], row["criterion"], row["choice"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            # A torn last line (the server killed mid-write) is the only expected damage; say which line.
            raise StudyError(f"{path} line {n} is not a vote ({e!r}); remove or fix that line") from None
    return votes


class StudyStore:
    def __init__(self, folder):
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise StudyError(f"{self.folder} has no {MANIFEST}: make the study with tools/study.py generate (see "
                             f"README, 'A/B study')")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise StudyError(f"{path} cannot be read: {e}") from None
        for key in ("id", "seed", "secret", "configs", "pairs"):
            if key not in manifest:
                raise StudyError(f"{path} has no '{key}': it is not a study manifest made by tools/study.py generate")
        problems = []
        for pair in manifest["pairs"]:
            for side in SIDES:
                name = pair.get("files", {}).get(side)
                if not name:
                    problems.append(f"pair {pair['id']} has no clip {side} yet")
                elif not (self.folder / name).is_file():
                    problems.append(f"pair {pair['id']} clip {side}: {self.folder / name} is missing")
        if problems:
            raise StudyError(f"study {manifest['id']} in {self.folder} is incomplete: " + "; ".join(problems[:5])
                             + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
                             + ". Run tools/study.py generate again with the same settings to make the missing clips")
        if not manifest["pairs"]:
            raise StudyError(f"study {manifest['id']} in {self.folder} has no pairs; run tools/study.py generate")
        self.manifest = manifest
        self.id = manifest["id"]
        self.seed = manifest["seed"]
        self.criteria = tuple(manifest.get("criteria") or CRITERIA)
        self.pairs = {p["id"]: p for p in manifest["pairs"]}
        self.tokens = {clip_token(manifest["secret"], p, side): (p, side) for p in self.pairs for side in SIDES}
        self._lock = threading.Lock()   # aiohttp handlers run on one loop, but the CLI and tests may share a store
        self._votes = self._read_votes()

    # --- state ---------------------------------------------------------------------------------------------------
    def _read_votes(self) -> list[Vote]:
        return read_votes(self.folder, self.pairs)

    @property
    def closed(self) -> dict | None:
        path = self.folder / CLOSED
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def votes(self) -> list[Vote]:
        """Every vote counted: the latest of each rater on each pair and criterion."""
        with self._lock:
            return latest_votes(self._votes)

    def raters(self) -> list[str]:
        return sorted({v.rater for v in self.votes()})

    # --- what a rater sees --------------------------------------------------------------------------------------
    def clip_url_token(self, pair: str, side: str) -> str:
        return clip_token(self.manifest["secret"], pair, side)

    def clip_path(self, token: str) -> Path | None:
        found = self.tokens.get(token)
        return self.folder / self.pairs[found[0]]["files"][found[1]] if found else None

    def session(self, rater) -> dict:
        """The rater's pairs in their order, each with its two clips as left/right tokens and the rater's votes so
        far in left/right terms, and how many pairs they have finished (every criterion answered)."""
        rater = check_rater(rater)
        ids = list(self.pairs)
        left = left_sides(self.seed, rater, ids)
        mine: dict[str, dict[str, str]] = {}
        for vote in self.votes():
            if vote.rater == rater:
                shown = {"tie": "tie", left[vote.pair]: "left"}.get(vote.choice, "right")
                mine.setdefault(vote.pair, {})[vote.criterion] = shown
        pairs = []
        for pid in pair_order(self.seed, rater, ids):
            l_side = left[pid]
            r_side = "B" if l_side == "A" else "A"
            pairs.append({"pair": pid, "prompt": self.pairs[pid]["prompt"],
                          "left": self.clip_url_token(pid, l_side), "right": self.clip_url_token(pid, r_side),
                          "votes": mine.get(pid, {})})
        finished = sum(1 for p in pairs if len(p["votes"]) == len(self.criteria))
        return {"study": self.id, "rater": rater, "criteria": list(self.criteria), "choices": list(PAGE_CHOICES),
                "pairs": pairs, "finished": finished, "closed": self.closed is not None}

    # --- votes ---------------------------------------------------------------------------------------------------
    def record(self, rater, pair, criterion, choice) -> dict:
        """Store one vote given on the page (choice left/right/tie), un-blinded to A/B. Returns the stored row."""
        rater = check_rater(rater)
        if pair not in self.pairs:
            raise StudyInputError(f"unknown pair {pair!r} in study {self.id}: the page must send a pair id from the "
                                  f"session (p000 ... ); reload the page")
        if criterion not in self.criteria:
            raise StudyInputError(f"unknown criterion {criterion!r}: give one of {', '.join(self.criteria)}")
        if choice not in PAGE_CHOICES:
            raise StudyInputError(f"choice {choice!r}: give one of {', '.join(PAGE_CHOICES)}")
        if self.closed is not None:
            raise StudyClosed(f"study {self.id} is closed: its votes are final and no more are taken")
        shown_left = left_sides(self.seed, rater, list(self.pairs))[pair]
        ab = "tie" if choice == "tie" else shown_left if choice == "left" else ("B" if shown_left == "A" else "A")
        row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rater": rater, "pair": pair, "criterion": criterion,
               "choice": ab, "shown": choice, "left": shown_left}
        with self._lock:
            with open(self.folder / VOTES, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()
            self._votes.append(Vote(rater, pair, self.pairs[pair]["theme"], criterion, ab))
        return row

    # --- closing and revealing ----------------------------------------------------------------------------------
    def close(self) -> dict:
        """Close the study (idempotent): no more votes; the configurations and the report become visible."""
        with self._lock:
            if self.closed is None:
                state = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "raters": len({v.rater for v in self._votes}),
                         "votes": len(latest_votes(self._votes))}
                tmp = self.folder / f".{CLOSED}.tmp"
                tmp.write_text(json.dumps(state) + "\n", encoding="utf-8")
                tmp.replace(self.folder / CLOSED)
        return self.closed

    def configs(self) -> dict:
        if self.closed is None:
            raise NotRevealed(f"study {self.id} is still open: the configurations are shown once it is closed")
        return {side: self.manifest["configs"][side] for side in SIDES}

    def summary(self) -> dict:
        """What anyone may see at any time: the study, its size, how many raters, whether it is closed."""
        return {"id": self.id, "pairs": len(self.pairs), "raters": len(self.raters()),
                "closed": self.closed is not None}
