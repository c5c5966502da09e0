"""Making an A/B study's clips: for each prompt one clip per configuration, with the same seed, into a study folder
with a manifest. Pure: the clip itself comes from a `render` function (tools/study.py passes one that queues the
workflow on ComfyUI through tools/client.py; the tests pass a fake), so this runs and is tested without ComfyUI.

A study folder holds
    manifest.json    study id, seed, the two configurations, and per pair: id, prompt, theme, seed, files A/B
    clips/           p000_A.mp4, p000_B.mp4, ... (metadata scrubbed, see blind.py; served under opaque names)
    votes.jsonl      written by the rating page (store.py), one vote a line
    closed.json      written when the study is closed (then the names are revealed and the report made)

The manifest is rewritten (atomically) after every clip, so an interrupted run resumes where it stopped: a clip that
is recorded and whose file exists is not made again. Pair ids come from the prompt's place in the prompt file
(p000..p099), so a 9-prompt trial can later be extended to the whole set in the same folder.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Callable

from .blind import NotMP4, scrub_mp4
from .stats import CRITERIA

PROMPTS = Path(__file__).resolve().parent / "prompts.json"
SIDES = ("A", "B")
MANIFEST = "manifest.json"
FORMAT = 1


class StudyError(Exception):
    """Bad input to the study tools; the message names the input and the fix."""


def load_prompts(path: str | os.PathLike | None = None) -> list[dict]:
    """[{index, theme, prompt}] from a prompt file: {"prompts": [{"theme", "prompt"}, ...]} (JSON), or a CSV with
    theme,prompt columns."""
    path = Path(path) if path else PROMPTS
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise StudyError(f"prompt file {path}: {e.strerror}; give an existing file with --prompt-file") from None
    if path.suffix.lower() == ".csv":
        import csv
        rows = list(csv.DictReader(text.splitlines()))
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise StudyError(f"prompt file {path} is not JSON: {e}") from None
        rows = rows.get("prompts") if isinstance(rows, dict) else rows
    if not isinstance(rows, list) or not rows:
        raise StudyError(f"prompt file {path} has no prompts; give {{\"prompts\": [{{\"theme\": ..., \"prompt\": ...}}]}}"
                         f" or a CSV with theme,prompt columns")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not str(row.get("prompt") or "").strip() or not str(row.get("theme") or "").strip():
            raise StudyError(f"prompt file {path}, entry {i + 1}: needs a non-empty 'theme' and 'prompt', got {row!r}")
        out.append({"index": i, "theme": str(row["theme"]).strip(), "prompt": str(row["prompt"]).strip()})
    return out


def select_prompts(prompts: list[dict], count: int | None) -> list[dict]:
    """The first `count` prompts taken round-robin over the themes (theme order as in the file), so a small trial
    still covers the themes; all of them for None. Returned in file order."""
    if count is None or count >= len(prompts):
        return list(prompts)
    if count < 1:
        raise StudyError(f"--prompts {count}: give at least 1")
    themes: dict[str, list[dict]] = {}
    for p in prompts:
        themes.setdefault(p["theme"], []).append(p)
    chosen, rank = [], 0
    while len(chosen) < count:
        for queue in themes.values():
            if rank < len(queue) and len(chosen) < count:
                chosen.append(queue[rank])
        rank += 1
    return sorted(chosen, key=lambda p: p["index"])


def pair_id(index: int) -> str:
    return f"p{index:03d}"


def pair_seed(study_seed: int, index: int) -> int:
    """Both clips of a pair share this seed: the comparison is of the configurations, not of the noise."""
    return study_seed + index


def read_manifest(folder: Path) -> dict | None:
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StudyError(f"{path} cannot be read ({e}); move it away to start the study again") from None


def write_manifest(folder: Path, manifest: dict) -> None:
    """Atomic replace: an interruption leaves the old or the new manifest, never half of one."""
    path = Path(folder) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def new_manifest(study_id: str, seed: int, configs: dict) -> dict:
    return {"format": FORMAT, "id": study_id, "seed": seed, "secret": secrets.token_hex(16),
            "criteria": list(CRITERIA), "configs": configs, "pairs": []}


def check_resumable(old: dict, study_id: str, seed: int, configs: dict, folder: Path) -> None:
    for key, value in (("id", study_id), ("seed", seed), ("configs", configs)):
        if old.get(key) != value:
            raise StudyError(f"{folder} already holds a study with another {key} ({json.dumps(old.get(key))} there, "
                             f"{json.dumps(value)} now): resume with the same settings, or choose a new --id/--root")


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def study_id_ok(study_id: str) -> bool:
    return bool(study_id) and len(study_id) <= 64 and all(c.isalnum() or c in "-_" for c in study_id)


Render = Callable[[dict, str, int, Path], Path]


def generate(folder: str | os.PathLike, study_id: str, seed: int, configs: dict, prompts: list[dict],
             render: Render, log: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic) -> dict:
    """Make every missing clip of `prompts` under `configs` ({"A": config, "B": config}) into `folder`.

    render(config, prompt, seed, workdir) makes one clip and returns its file (an MP4 somewhere under workdir).
    Returns the manifest. Prints one line per clip: n/N, the pair, the side, seconds taken and the ETA."""
    if not study_id_ok(study_id):
        raise StudyError(f"--id {study_id!r}: use 1-64 letters, digits, '-' or '_' (it becomes a folder and a URL)")
    if set(configs) != set(SIDES):
        raise StudyError(f"configs must be exactly A and B, got {sorted(configs)}")
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    if (folder / "closed.json").exists():
        raise StudyError(f"{folder}: this study is closed (its ratings are final); make a new one with another --id")
    manifest = read_manifest(folder)
    if manifest is None:
        manifest = new_manifest(study_id, seed, configs)
    else:
        check_resumable(manifest, study_id, seed, configs, folder)
    pairs = {p["id"]: p for p in manifest["pairs"]}

    todo, done_before = [], 0
    for p in prompts:
        pid = pair_id(p["index"])
        entry = pairs.get(pid)
        if entry is not None and (entry["prompt"], entry["theme"]) != (p["prompt"], p["theme"]):
            raise StudyError(f"{folder}: pair {pid} was made for {entry['prompt']!r} ({entry['theme']}), the prompt "
                             f"file now says {p['prompt']!r} ({p['theme']}); use the same prompt file, or a new --id")
        for side in SIDES:
            name = (entry or {}).get("files", {}).get(side)
            if name and (folder / name).is_file():
                done_before += 1
            else:
                todo.append((p, side))
    total = done_before + len(todo)
    if done_before:
        log(f"resuming {study_id}: {done_before} of {total} clips already in {folder}")

    work = folder / ".partial"
    times: list[float] = []
    for n, (p, side) in enumerate(todo, start=done_before + 1):
        pid, seed_ = pair_id(p["index"]), pair_seed(seed, p["index"])
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        start = clock()
        made = Path(render(configs[side], p["prompt"], seed_, work))
        try:
            data, _ = scrub_mp4(made.read_bytes())
        except NotMP4 as e:
            raise StudyError(f"config {side} ({configs[side].get('name')}) saved {made.name}: {e}. Study clips must "
                             f"be MP4 (their metadata is removed so raters cannot read the configuration): give the "
                             f"config the override format=mp4") from None
        name = f"clips/{pid}_{side}.mp4"
        (folder / name).write_bytes(data)
        entry = pairs.get(pid)
        if entry is None:
            entry = pairs[pid] = {"id": pid, "index": p["index"], "prompt": p["prompt"], "theme": p["theme"],
                                  "seed": seed_, "files": {}}
            manifest["pairs"].append(entry)
            manifest["pairs"].sort(key=lambda e: e["index"])
        entry["files"][side] = name
        write_manifest(folder, manifest)
        times.append(clock() - start)
        left = total - n
        eta = format_duration(sum(times) / len(times) * left) if left else "done"
        short = p["prompt"] if len(p["prompt"]) <= 48 else p["prompt"][:47].rstrip() + "…"
        log(f"[{n}/{total}] {pid} {side} ({p['theme']}) \"{short}\": {times[-1]:.1f}s, ETA {eta}")
    shutil.rmtree(work, ignore_errors=True)
    write_manifest(folder, manifest)
    return manifest
