"""Making an A/B study's clips: for each prompt one clip per configuration, with the same seed, into a study folder
with a manifest (manifest.py). Pure: the clip itself comes from a `render` function (tools/study.py passes one that
queues the workflow on ComfyUI through tools/client.py; the tests pass a fake), so this runs and is tested without
ComfyUI.

Each clip is scrubbed of its metadata (blind.py) and stored under a random name (clips/<32 hex>.mp4), with one fixed
modification time for all, so neither the name nor the file's dates say which configuration or which moment made
it. The manifest is rewritten (atomically) after every clip, so an interrupted run resumes where it stopped: a clip
that is recorded and whose file exists is not made again. Pair ids come from the prompt's place in the prompt file
(p000..p099), so a 9-prompt trial can later be extended to the whole set in the same folder.

Where studies live: outside every folder ComfyUI serves (output, input, temp, user: core's /view, /upload/*,
/userdata and /internal/files read or write them); `check_root` refuses those. What the generation leaves on the
ComfyUI side is removed by the caller with `remove_originals` (the unscrubbed files, which carry the workflow) and
core's history deletion (tools/study.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Callable

from .blind import NotMP4, scrub_mp4
from .manifest import (MANIFEST, SIDES, StudyError, check_configs, new_clip_name, new_manifest,  # noqa: F401
                       read_manifest, study_id_ok, write_manifest)

PROMPTS = Path(__file__).resolve().parent / "prompts.json"
CLIP_MTIME = 946684800            # 2000-01-01: every clip gets this date, so file times do not order the clips
THROWAWAY = "adlightning_study_tmp"
SERVED_BY_COMFYUI = ("output", "input", "temp", "user")


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


def _served_folder_of(path: Path) -> str | None:
    """The ComfyUI folder that serves `path` ("<ComfyUI>/output", ...) when path lies in one of a ComfyUI tree's
    served folders, else None. A ComfyUI tree is a folder with main.py, folder_paths.py and comfy/."""
    for ancestor in path.parents:
        if (ancestor / "main.py").is_file() and (ancestor / "folder_paths.py").is_file() and \
                (ancestor / "comfy").is_dir():
            first = path.relative_to(ancestor).parts[:1]
            if first and first[0] in SERVED_BY_COMFYUI:
                return str(ancestor / first[0])
    return None


def check_root(root, comfy_output=None) -> Path:
    """The study root (resolved), refused where core's routes reach it: inside ComfyUI's output folder (given) or in
    any ComfyUI tree's output, input, temp or user folder."""
    root = Path(root).expanduser().resolve()
    served = [Path(comfy_output).expanduser().resolve()] if comfy_output else []
    for folder in served:
        if root == folder or folder in root.parents:
            raise StudyError(f"--root {root} is inside ComfyUI's output folder {folder}, which ComfyUI serves to "
                             f"anyone who can reach it (/view): keep studies outside ComfyUI, e.g. the default "
                             f"~/adlightning-studies")
    found = _served_folder_of(root / "x")
    if found:
        raise StudyError(f"--root {root} is inside {found}, which ComfyUI serves to anyone who can reach it (/view, "
                         f"/upload, /userdata): keep studies outside ComfyUI, e.g. the default ~/adlightning-studies")
    return root


def throwaway_prefix() -> str:
    """A filename_prefix for one study clip: a fresh folder of its own under ComfyUI's output, so that what
    remove_originals deletes there can only be what this one prompt saved."""
    return f"{THROWAWAY}/{secrets.token_hex(12)}/clip"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def remove_originals(comfy_output, prefix: str, items: list[dict], downloaded: list[Path]) -> list[Path]:
    """Delete from ComfyUI's output folder exactly the files one study prompt saved (they carry the workflow, and core
    serves them), then its throw-away folder if empty. Each must be named by the prompt's history entry (`items`:
    {filename, subfolder, type}), lie in the prompt's own throw-away folder (`prefix`, from throwaway_prefix) inside
    `comfy_output`, be a regular file, and hold exactly the bytes downloaded from ComfyUI (`downloaded`, in the order
    of `items`); anything else is refused and nothing is deleted. Returns the deleted paths."""
    output = Path(comfy_output).resolve()
    own = (output / prefix).parent
    if not own.is_relative_to(output / THROWAWAY):
        raise StudyError(f"prefix {prefix!r} is not a study throw-away folder")
    doomed = []
    for item, copy in zip(items, downloaded, strict=True):
        named = f"{item.get('subfolder')}/{item.get('filename')}"
        if item.get("type") != "output" or Path(str(item.get("subfolder"))) != Path(prefix).parent:
            raise StudyError(f"ComfyUI saved {named} ({item.get('type')}) outside the study's throw-away folder: a "
                             f"study workflow must save its one clip through the prefix the generator sets, and "
                             f"nothing else (no preview nodes)")
        path = output / item["subfolder"] / item["filename"]
        if path.parent.resolve() != own or not path.is_file() or path.is_symlink():
            raise StudyError(f"ComfyUI's output folder is not --comfy-output {comfy_output}: {named} is not there. "
                             f"Give the folder this ComfyUI saves into (its output/, or its --output-directory); "
                             f"the generator deletes the unscrubbed originals there")
        if not stat.S_ISREG(path.lstat().st_mode) or _sha256(path) != _sha256(Path(copy)):
            raise StudyError(f"{path} is not the file ComfyUI served for {named}: not deleted; check --comfy-output")
        doomed.append(path)
    for path in doomed:
        path.unlink()
    for folder in (own, own.parent):
        try:
            folder.rmdir()      # only when empty
        except OSError:
            break
    return doomed


def _store_clip(folder: Path, data: bytes) -> str:
    """Write a scrubbed clip under a new random name with the common date; its name relative to the folder."""
    name = new_clip_name()
    path = folder / name
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.utime(tmp, (CLIP_MTIME, CLIP_MTIME))
    tmp.replace(path)
    return name


Render = Callable[[dict, str, int, Path], Path]


def generate(folder: str | os.PathLike, study_id: str, seed: int, configs: dict, prompts: list[dict],
             render: Render | list[Render], log: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic) -> dict:
    """Make every missing clip of `prompts` under `configs` ({"A": config, "B": config}) into `folder`.

    render(config, prompt, seed, workdir) makes one clip and returns its file (an MP4 somewhere under workdir); a list
    of them (one per ComfyUI server) makes clips side by side, each taking the next clip when it has made its last.
    Returns the manifest. Logs the organiser secret when it creates the study (only its hash is stored), then one line
    per clip: n/N, the pair, the side, seconds taken and the ETA."""
    if not study_id_ok(study_id):
        raise StudyError(f"--id {study_id!r}: use 1-64 letters, digits, '-' or '_' (it becomes a folder and a URL)")
    check_configs(configs, "--configs")
    folder = Path(folder)
    if (folder / "closed.json").exists():
        raise StudyError(f"{folder}: this study is closed (its ratings are final); make a new one with another --id")
    try:
        manifest = read_manifest(folder, complete=False)
    except StudyError as e:
        raise StudyError(f"{folder}: {e}") from None
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest, organiser = new_manifest(study_id, seed, configs)
        write_manifest(folder, manifest)
        log(f"organiser secret: {organiser}  (keep it: closing the study on the rating page needs it; only its hash "
            f"is stored. Lost it? close with: python -m tools.study close {folder})")
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

    renders = list(render) if isinstance(render, (list, tuple)) else [render]
    times: list[float] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def keep(p: dict, side: str, made: Path, started: float) -> None:
        """Scrub a made clip, store it under an opaque name and record it (one at a time: the manifest is shared)."""
        pid, seed_ = pair_id(p["index"]), pair_seed(seed, p["index"])
        try:
            data, _ = scrub_mp4(made.read_bytes())
        except NotMP4 as e:
            raise StudyError(f"config {side} ({configs[side].get('name')}) saved {made.name}: {e}. Study clips must "
                             f"be MP4 (their metadata is removed so raters cannot read the configuration): give the "
                             f"config the override format=mp4") from None
        entry = pairs.get(pid)
        if entry is None:
            entry = pairs[pid] = {"id": pid, "index": p["index"], "prompt": p["prompt"], "theme": p["theme"],
                                  "seed": seed_, "files": {}}
            manifest["pairs"].append(entry)
            manifest["pairs"].sort(key=lambda e: e["index"])
        entry["files"][side] = _store_clip(folder, data)
        write_manifest(folder, manifest)
        times.append(clock() - started)
        n = done_before + len(times)
        left = total - n
        # Several renders (one per ComfyUI server) work at once: the time left is the mean clip time per server.
        eta = format_duration(sum(times) / len(times) * left / len(renders)) if left else "done"
        short = p["prompt"] if len(p["prompt"]) <= 48 else p["prompt"][:47].rstrip() + "…"
        log(f"[{n}/{total}] {pid} {side} ({p['theme']}) \"{short}\": {times[-1]:.1f}s, ETA {eta}")

    def worker(k: int, render_: Render) -> None:
        work = folder / (".partial" if len(renders) == 1 else f".partial-{k}")
        while True:
            with lock:
                if not todo or failures:
                    break
                p, side = todo.pop(0)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            started = clock()
            try:
                made = Path(render_(configs[side], p["prompt"], pair_seed(seed, p["index"]), work))
                with lock:
                    keep(p, side, made, started)
            except BaseException as e:   # stop the others after their clip; re-raised below
                with lock:
                    failures.append(e)
                break
            finally:
                shutil.rmtree(work, ignore_errors=True)     # the unscrubbed download goes at once

    if len(renders) == 1:
        worker(0, renders[0])
    else:
        threads = [threading.Thread(target=worker, args=(k, r), daemon=True) for k, r in enumerate(renders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    write_manifest(folder, manifest)
    return manifest
