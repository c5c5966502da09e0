"""The study generator (study/generate.py) with a fake render function (no ComfyUI): matched seeds, the manifest,
clips under random names with one date, the organiser secret, resuming after an interruption without redoing
finished clips, progress lines, the shipped prompt set; where studies may live; deleting exactly the originals one
prompt left in ComfyUI's output folder."""
from __future__ import annotations

import json
import os
import re
from collections import Counter

import pytest

from adlightning.study import generate as gen
from adlightning.study.manifest import CLIP_NAME, organiser_ok
from adlightning.study.store import StudyStore
from tests.unit.study_fixtures import CONFIGS, fake_mp4

THEMES = ["sports", "nature", "wildlife", "urban exploration", "historical moments", "underwater worlds",
          "abstract concepts", "magical seasons", "mystical realms"]


class FakeComfy:
    """Makes a 'clip' per call, records what was asked, and can fail at the n-th call (an interruption)."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def __call__(self, config, prompt, seed, workdir):
        if self.fail_at is not None and len(self.calls) + 1 == self.fail_at:
            raise KeyboardInterrupt
        self.calls.append((config["name"], prompt, seed))
        out = workdir / "AnimateDiff-Lightning" / "t2v_00001_.mp4"
        out.parent.mkdir(parents=True)
        out.write_bytes(fake_mp4(f'{{"config": "{config["name"]}"}}'))
        return out


def prompts(n=3):
    return gen.select_prompts(gen.load_prompts(), n)


def test_the_shipped_prompt_set_has_100_prompts_over_the_nine_themes():
    rows = gen.load_prompts()
    assert len(rows) == 100 and len({r["prompt"] for r in rows}) == 100
    counts = Counter(r["theme"] for r in rows)
    assert list(counts) == THEMES and all(11 <= n <= 12 for n in counts.values()), counts
    assert all(4 <= len(r["prompt"].split()) <= 16 for r in rows)


def test_a_subset_is_taken_round_robin_over_the_themes():
    rows = gen.load_prompts()
    three = gen.select_prompts(rows, 3)
    assert [r["theme"] for r in three] == THEMES[:3]
    twelve = gen.select_prompts(rows, 12)
    assert Counter(r["theme"] for r in twelve) == Counter({t: 1 for t in THEMES}) + Counter(THEMES[:3])
    assert gen.select_prompts(rows, None) == rows and gen.select_prompts(rows, 500) == rows
    with pytest.raises(gen.StudyError, match="--prompts 0"):
        gen.select_prompts(rows, 0)


def organiser_of(lines: list[str]) -> str:
    found = [re.match(r"organiser secret: (\S+)  \(keep it", line) for line in lines]
    return next(m.group(1) for m in found if m)


def test_generate_makes_matched_pairs_a_manifest_and_progress_lines(tmp_path):
    folder = tmp_path / "s1"
    fake, lines = FakeComfy(), []
    clock = iter(range(0, 1000, 10)).__next__          # every clip takes 10 "seconds"
    manifest = gen.generate(folder, "s1", 100, CONFIGS, prompts(3), fake, log=lines.append, clock=clock)
    rows = prompts(3)
    assert [(c[0], c[2]) for c in fake.calls] == [(CONFIGS[s]["name"], 100 + r["index"]) for r in rows for s in "AB"]
    assert fake.calls[0][1] == fake.calls[1][1] == rows[0]["prompt"]
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == manifest and manifest["id"] == "s1" and manifest["seed"] == 100 and manifest["format"] == 2
    assert manifest["configs"] == CONFIGS and len(manifest["secret"]) == 64
    assert [(p["id"], p["theme"], p["seed"]) for p in manifest["pairs"]] == [
        (f"p{r['index']:03d}", r["theme"], 100 + r["index"]) for r in rows]
    names = [name for p in manifest["pairs"] for name in p["files"].values()]
    assert len(set(names)) == 6 and all(CLIP_NAME.fullmatch(name) for name in names)    # random, not p000_A
    for name in names:
        assert b"config" not in (folder / name).read_bytes()    # metadata scrubbed on the way in
        assert (folder / name).stat().st_mtime == gen.CLIP_MTIME  # one date for all: no order in the file times
    # the organiser secret is printed once, at creation; only its hash is kept
    secret = organiser_of(lines)
    assert organiser_ok(manifest, secret) and secret not in (folder / "manifest.json").read_text()
    assert lines[0].startswith("organiser secret: ") and len(lines) == 7
    assert lines[1].startswith("[1/6] p000 A (sports) ") and lines[1].endswith("ETA 50s")
    assert lines[-1].startswith("[6/6] p") and lines[-1].endswith("10.0s, ETA done")
    assert not (folder / ".partial").exists()
    assert len(StudyStore(folder).pairs) == 3                        # the rating server can open it


def test_an_interrupted_run_resumes_without_redoing_finished_clips(tmp_path):
    folder = tmp_path / "s1"
    lines = []
    with pytest.raises(KeyboardInterrupt):
        gen.generate(folder, "s1", 5, CONFIGS, prompts(3), FakeComfy(fail_at=4), log=lines.append)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [(p["id"], sorted(p["files"])) for p in manifest["pairs"]] == [("p000", ["A", "B"]), ("p012", ["A"])]
    (folder / manifest["pairs"][0]["files"]["B"]).unlink()            # a recorded clip whose file went away
    second, lines = FakeComfy(), []
    manifest = gen.generate(folder, "s1", 5, CONFIGS, prompts(3), second, log=lines.append)
    assert [(c[0], c[2]) for c in second.calls] == [("AnimateDiff v2 25 steps", 5), ("AnimateDiff v2 25 steps", 17),
                                                    ("Lightning 4-step", 28), ("AnimateDiff v2 25 steps", 28)]
    assert lines[0] == f"resuming s1: 2 of 6 clips already in {folder}" and lines[1].startswith("[3/6] p000 B")
    assert not any("organiser secret" in line for line in lines)      # printed once, when the study was made
    assert all(sorted(p["files"]) == ["A", "B"] for p in manifest["pairs"]) and len(manifest["pairs"]) == 3
    third = FakeComfy()
    gen.generate(folder, "s1", 5, CONFIGS, prompts(3), third, log=lambda _: None)
    assert third.calls == []                                           # all done: nothing queued
    more = FakeComfy()                                                 # extend the trial to 4 prompts
    gen.generate(folder, "s1", 5, CONFIGS, prompts(4), more, log=lambda _: None)
    assert [c[2] for c in more.calls] == [5 + 34, 5 + 34]      # urban exploration starts at 34


def test_resuming_with_other_settings_is_refused(tmp_path):
    gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(1), FakeComfy(), log=lambda _: None)
    with pytest.raises(gen.StudyError, match="another seed .* resume with the same settings"):
        gen.generate(tmp_path, "s1", 6, CONFIGS, prompts(1), FakeComfy(), log=lambda _: None)
    other = {**CONFIGS, "B": {**CONFIGS["B"], "overrides": {"steps": 8}}}
    with pytest.raises(gen.StudyError, match="another configs"):
        gen.generate(tmp_path, "s1", 5, other, prompts(1), FakeComfy(), log=lambda _: None)
    changed = [{**prompts(1)[0], "prompt": "a different prompt"}]
    with pytest.raises(gen.StudyError, match="pair p000 was made for"):
        gen.generate(tmp_path, "s1", 5, CONFIGS, changed, FakeComfy(), log=lambda _: None)
    old = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**old, "format": 1}))
    with pytest.raises(gen.StudyError, match="made by an older version"):
        gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(1), FakeComfy(), log=lambda _: None)
    (tmp_path / "closed.json").write_text("{}")
    with pytest.raises(gen.StudyError, match="closed"):
        gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(1), FakeComfy(), log=lambda _: None)


# --- where studies live ------------------------------------------------------------------------------------------

def comfy_tree(path):
    (path / "comfy").mkdir(parents=True)
    (path / "main.py").write_text("")
    (path / "folder_paths.py").write_text("")
    return path


@pytest.mark.parametrize("inside", ["output", "output/adlightning_study", "input/x", "temp", "user/default"])
def test_a_study_root_that_comfyui_serves_is_refused(tmp_path, inside):
    comfy = comfy_tree(tmp_path / "ComfyUI")
    with pytest.raises(gen.StudyError, match=f"inside {comfy / inside.split('/')[0]}, which ComfyUI serves"):
        gen.check_root(comfy / inside)


def test_a_study_root_inside_the_given_output_folder_is_refused(tmp_path):
    output = tmp_path / "elsewhere" / "comfy-out"
    output.mkdir(parents=True)
    with pytest.raises(gen.StudyError, match="inside ComfyUI's output folder"):
        gen.check_root(output / "studies", output)
    comfy_tree(tmp_path / "ComfyUI")
    assert gen.check_root(tmp_path / "ComfyUI" / "studies", output) == (tmp_path / "ComfyUI" / "studies").resolve()
    assert gen.check_root(tmp_path / "studies", output) == (tmp_path / "studies").resolve()


# --- removing what a study prompt left in ComfyUI's output folder ---------------------------------------------

def comfy_saved(output, workdir, prefix, data=b"clip bytes"):
    """What ComfyUI would hold after one study prompt (its file under the prefix) and what the client downloaded."""
    sub = os.path.dirname(prefix)
    (output / sub).mkdir(parents=True, exist_ok=True)
    (output / sub / "clip_00001_.mp4").write_bytes(data)
    (workdir / sub).mkdir(parents=True, exist_ok=True)
    (workdir / sub / "clip_00001_.mp4").write_bytes(data)
    return [{"filename": "clip_00001_.mp4", "subfolder": sub, "type": "output"}], [workdir / sub / "clip_00001_.mp4"]


def test_only_the_files_the_prompt_saved_are_deleted(tmp_path):
    output, work = tmp_path / "output", tmp_path / "work"
    (output / "AnimateDiff-Lightning").mkdir(parents=True)
    (output / "AnimateDiff-Lightning" / "mine.mp4").write_bytes(b"the user's own clip")
    earlier = gen.throwaway_prefix()
    comfy_saved(output, tmp_path / "work0", earlier)                       # another clip's folder, left alone
    prefix = gen.throwaway_prefix()
    assert re.fullmatch(r"adlightning_study_tmp/[0-9a-f]{24}/clip", prefix) and prefix != earlier
    items, downloaded = comfy_saved(output, work, prefix)
    deleted = gen.remove_originals(output, prefix, items, downloaded)
    assert deleted == [output / os.path.dirname(prefix) / "clip_00001_.mp4"]
    assert not (output / os.path.dirname(prefix)).exists()              # its own folder went with it
    assert (output / os.path.dirname(earlier) / "clip_00001_.mp4").exists()
    assert (output / "AnimateDiff-Lightning" / "mine.mp4").exists()


def test_anything_but_the_prompts_own_files_is_refused_and_nothing_deleted(tmp_path):
    output, work = tmp_path / "output", tmp_path / "work"
    prefix = gen.throwaway_prefix()
    items, downloaded = comfy_saved(output, work, prefix)
    original = output / items[0]["subfolder"] / items[0]["filename"]
    cases = [
        ([{**items[0], "subfolder": "AnimateDiff-Lightning"}], "outside the study's throw-away folder"),
        ([{**items[0], "subfolder": items[0]["subfolder"] + "/../.."}], "outside the study's throw-away folder"),
        ([{**items[0], "type": "temp"}], "no preview nodes"),
        ([{**items[0], "filename": "../../../x.mp4"}], "is not there"),
    ]
    for bad, message in cases:
        with pytest.raises(gen.StudyError, match=message):
            gen.remove_originals(output, prefix, bad, downloaded)
    with pytest.raises(gen.StudyError, match="is not there"):                 # the wrong --comfy-output
        gen.remove_originals(tmp_path / "not-the-output", prefix, items, downloaded)
    downloaded[0].write_bytes(b"other bytes")
    with pytest.raises(gen.StudyError, match="is not the file ComfyUI served"):
        gen.remove_originals(output, prefix, items, downloaded)
    with pytest.raises(gen.StudyError, match="not a study throw-away folder"):
        gen.remove_originals(output, "AnimateDiff-Lightning/clip", items, downloaded)
    assert original.read_bytes() == b"clip bytes"
    original.unlink()
    original.symlink_to(downloaded[0])                                   # a link is not a saved file
    with pytest.raises(gen.StudyError, match="is not there"):
        gen.remove_originals(output, prefix, items, downloaded)
    assert downloaded[0].exists()


def test_bad_input_is_refused_with_the_fix(tmp_path):
    with pytest.raises(gen.StudyError, match="--id 'a/b'"):
        gen.generate(tmp_path, "a/b", 5, CONFIGS, prompts(1), FakeComfy())
    with pytest.raises(gen.StudyError, match="^--configs: configs.B.workflow must be a string"):
        gen.generate(tmp_path, "s1", 5, {**CONFIGS, "B": {"name": "x"}}, prompts(1), FakeComfy())

    def webp(config, prompt, seed, workdir):
        (workdir / "x.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
        return workdir / "x.webp"
    with pytest.raises(gen.StudyError, match="saved x.webp: not an MP4 file .* override format=mp4"):
        gen.generate(tmp_path / "w", "s1", 5, CONFIGS, prompts(1), webp, log=lambda _: None)
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"prompts": [{"theme": "x"}]}))
    with pytest.raises(gen.StudyError, match="entry 1: needs a non-empty 'theme' and 'prompt'"):
        gen.load_prompts(bad)
    csv = tmp_path / "p.csv"
    csv.write_text("theme,prompt\nsports,a surfer\nnature,a waterfall\n")
    assert [r["prompt"] for r in gen.load_prompts(csv)] == ["a surfer", "a waterfall"]


def test_several_renders_make_the_clips_side_by_side(tmp_path):
    """One render per ComfyUI server: every clip is made once, by whichever server is free, and the study is the
    same as with one server (matched seeds, every pair complete)."""
    import threading
    import time

    class Slow(FakeComfy):
        def __call__(self, config, prompt, seed, workdir):
            self.threads = getattr(self, "threads", set()) | {threading.get_ident()}
            time.sleep(0.02)
            return super().__call__(config, prompt, seed, workdir)

    fast, slow = FakeComfy(), Slow()
    lines = []
    manifest = gen.generate(tmp_path / "s", "s", 5, CONFIGS, prompts(4), [fast, slow], log=lines.append)
    made = sorted(fast.calls + slow.calls)
    assert len(made) == 8 and len(set(made)) == 8 and fast.calls and slow.calls
    assert {c[2] for c in made} == {gen.pair_seed(5, p["index"]) for p in prompts(4)}
    assert all(set(p["files"]) == {"A", "B"} for p in manifest["pairs"]) and len(manifest["pairs"]) == 4
    assert [re.match(r"\[(\d+)/8\]", line).group(1) for line in lines if line.startswith("[")] == \
        [str(n) for n in range(1, 9)]
    StudyStore(tmp_path / "s")   # a complete study that loads
