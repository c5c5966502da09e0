"""A study folder's manifest: what it holds, written atomically, and checked field by field whenever it is read.

    manifest.json    {"format": 2, "id", "seed", "secret", "organiser_sha256", "criteria", "configs": {"A", "B"},
                      "pairs": [{"id", "index", "prompt", "theme", "seed", "files": {"A", "B"}}]}
    clips/           the clips, each named by a random id (clips/<32 hex>.mp4): a file name says nothing of A or B
    votes.jsonl      the votes (votes.py), closed.json once the organiser closed the study, report.* after

The manifest is the only thing that names the configurations and holds the token secret, so it is never served;
the rating server reads the clips through `clip_file`, which accepts nothing but a file name of the form above that
stays inside the study folder as a regular file (no absolute path, no '..', no link, checked again when opened).
A manifest that fails any check is refused with the field named, never half used.

Messages name files relative to the study folder (clips/..., manifest.json) so the rating server can show them to
anyone without disclosing where the studies live; the command line adds the folder.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from pathlib import Path

from .stats import CRITERIA

MANIFEST = "manifest.json"
SIDES = ("A", "B")
FORMAT = 2
CLIP_NAME = re.compile(r"clips/[0-9a-f]{32}\.mp4")
PAIR_ID = re.compile(r"p[0-9]{3,5}")
HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_PAIRS = 10000
MAX_TEXT = 2000


class StudyError(Exception):
    """Bad input to the study tools or a broken study folder; the message names the input or field and the fix."""


def study_id_ok(study_id) -> bool:
    return isinstance(study_id, str) and 0 < len(study_id) <= 64 and \
        all(c.isascii() and (c.isalnum() or c in "-_") for c in study_id)


def new_clip_name() -> str:
    return f"clips/{secrets.token_hex(16)}.mp4"


def organiser_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_manifest(study_id: str, seed: int, configs: dict) -> tuple[dict, str]:
    """A fresh manifest and the organiser secret (only its hash is kept: whoever holds the secret may close)."""
    organiser = secrets.token_urlsafe(18)
    return ({"format": FORMAT, "id": study_id, "seed": seed, "secret": secrets.token_hex(32),
             "organiser_sha256": organiser_hash(organiser), "criteria": list(CRITERIA), "configs": configs,
             "pairs": []}, organiser)


def organiser_ok(manifest: dict, secret) -> bool:
    return isinstance(secret, str) and 0 < len(secret) <= 200 and \
        hmac.compare_digest(organiser_hash(secret), manifest["organiser_sha256"])


def write_manifest(folder, manifest: dict) -> None:
    """Atomic replace: an interruption leaves the old or the new manifest, never half of one."""
    path = Path(folder) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


# --- checking -----------------------------------------------------------------------------------------------------

def _need(ok: bool, field: str, what: str, where: str = MANIFEST) -> None:
    if not ok:
        raise StudyError(f"{where}: {field} {what}")


def _text(value, field: str, limit: int = MAX_TEXT) -> str:
    _need(isinstance(value, str) and 0 < len(value) <= limit, field, f"must be a non-empty string (at most {limit} "
                                                                      f"characters)")
    return value


def _int(value, field: str) -> int:
    _need(type(value) is int and -2 ** 63 <= value < 2 ** 63, field, "must be an integer")
    return value


def check_configs(configs, where: str = MANIFEST) -> dict:
    """Both configurations: an object each with a name and a workflow (values not echoed: they are the secret)."""
    _need(isinstance(configs, dict) and set(configs) == set(SIDES), "configs", "must be an object with exactly A and "
                                                                               "B", where)
    for side in SIDES:
        config = configs[side]
        _need(isinstance(config, dict), f"configs.{side}", "must be an object", where)
        for key in ("name", "workflow"):
            _need(isinstance(config.get(key), str) and config[key], f"configs.{side}.{key}", "must be a string",
                  where)
        _need(isinstance(config.get("overrides", {}), dict), f"configs.{side}.overrides", "must be an object", where)
    return configs


def check_manifest(manifest, complete: bool = True) -> dict:
    """Every field of a format-2 manifest, type and form; StudyError naming the first bad one. complete: every pair
    has both clips (what rating needs; the generator resumes incomplete ones)."""
    _need(isinstance(manifest, dict), "the file", "must hold a JSON object")
    if manifest.get("format") != FORMAT:
        raise StudyError(f"{MANIFEST}: format {manifest.get('format')!r} is not {FORMAT}: this study was made by an "
                         f"older version (clips named by side, no organiser secret), whose blind does not hold; "
                         f"make it again with tools/study.py generate")
    _need(study_id_ok(manifest.get("id")), "id", "must be 1-64 letters, digits, '-' or '_'")
    _int(manifest.get("seed"), "seed")
    _need(isinstance(manifest.get("secret"), str) and HEX64.fullmatch(manifest["secret"]) is not None, "secret",
          "must be 64 hex digits")
    _need(isinstance(manifest.get("organiser_sha256"), str) and HEX64.fullmatch(manifest["organiser_sha256"])
          is not None, "organiser_sha256", "must be 64 hex digits")
    criteria = manifest.get("criteria")
    _need(isinstance(criteria, list) and 0 < len(criteria) <= 20, "criteria", "must be a list of 1-20 names")
    for i, c in enumerate(criteria):
        _text(c, f"criteria[{i}]", 100)
    _need(len(set(criteria)) == len(criteria), "criteria", "must not repeat a name")
    check_configs(manifest.get("configs"))
    pairs = manifest.get("pairs")
    _need(isinstance(pairs, list) and len(pairs) <= MAX_PAIRS, "pairs", f"must be a list of at most {MAX_PAIRS}")
    if complete:
        _need(len(pairs) > 0, "pairs", "is empty: run tools/study.py generate to make the clips")
    ids, files = set(), set()
    for i, pair in enumerate(pairs):
        where = f"pairs[{i}]"
        _need(isinstance(pair, dict), where, "must be an object")
        _need(isinstance(pair.get("id"), str) and PAIR_ID.fullmatch(pair["id"]) is not None, f"{where}.id",
              "must be p followed by 3-5 digits")
        _need(pair["id"] not in ids, f"{where}.id", f"{pair['id']} appears twice")
        ids.add(pair["id"])
        _int(pair.get("index"), f"{where}.index")
        _int(pair.get("seed"), f"{where}.seed")
        _text(pair.get("prompt"), f"{where}.prompt")
        _text(pair.get("theme"), f"{where}.theme", 200)
        clips = pair.get("files")
        _need(isinstance(clips, dict) and set(clips) <= set(SIDES), f"{where}.files", "must be an object with A "
                                                                                       "and/or B")
        if complete:
            for side in SIDES:
                _need(side in clips, f"{where}.files", f"has no clip {side} yet: run tools/study.py generate again "
                                                       f"with the same settings to finish the study")
        for side, name in clips.items():
            _need(isinstance(name, str) and CLIP_NAME.fullmatch(name) is not None, f"{where}.files.{side}",
                  f"must be clips/<32 hex digits>.mp4 (a file of the study folder), got {str(name)[:80]!r}")
            _need(name not in files, f"{where}.files.{side}", f"{name} is used twice")
            files.add(name)
    return manifest


def read_manifest(folder, complete: bool = True) -> dict | None:
    """The checked manifest of a study folder; None when it has none."""
    path = Path(folder) / MANIFEST
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StudyError(f"{MANIFEST} cannot be read: {e.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StudyError(f"{MANIFEST} is not a regular file (a link or a folder): refused")
    if info.st_size > 32 * 1024 * 1024:
        raise StudyError(f"{MANIFEST} is {info.st_size} bytes, too large for a study manifest")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise StudyError(f"{MANIFEST} is not readable JSON ({type(e).__name__}); move it away to start the study "
                         f"again") from None
    return check_manifest(manifest, complete)


def _inside(folder: Path, name: str) -> Path:
    """folder/name, required to be a regular file that is not a link, with every folder on the way inside `folder`
    (the clips folder could itself be a link out)."""
    if not isinstance(name, str) or CLIP_NAME.fullmatch(name) is None:
        raise StudyError(f"clip {str(name)[:80]!r} is not a study clip name")
    root = folder.resolve()
    path = root / name
    if path.parent.resolve() != root / "clips":
        raise StudyError(f"{name}: the clips folder leads outside the study folder (a link): refused")
    return path


def check_clip(folder, name: str) -> None:
    """StudyError unless the clip is a plain file of the study: regular, not a link, one name only."""
    path = _inside(Path(folder), name)
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise StudyError(f"{name} is missing: run tools/study.py generate again with the same settings") from None
    if not stat.S_ISREG(info.st_mode):
        raise StudyError(f"{name} is not a regular file (a link or a folder): refused")
    if info.st_nlink != 1:
        raise StudyError(f"{name} has other names on this disk (a hard link): refused, copy the study folder "
                         f"without links")


def open_clip(folder, name: str) -> tuple[int, int]:
    """(file descriptor, size) of a clip, opened without following a link and checked again after opening, so a file
    swapped for a link since the study was loaded is not read."""
    path = _inside(Path(folder), name)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise StudyError(f"{name} cannot be opened (missing, or a link): refused") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise StudyError(f"{name} is not a plain file of the study: refused")
    return fd, info.st_size
