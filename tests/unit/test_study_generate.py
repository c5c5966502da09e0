"""The study generator (study/generate.py) with a fake render function (no ComfyUI): matched seeds, the manifest,
resuming after an interruption without redoing finished clips, progress lines, the shipped prompt set."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from adlightning.study import generate as gen
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


def test_generate_makes_matched_pairs_a_manifest_and_progress_lines(tmp_path):
    fake, lines = FakeComfy(), []
    clock = iter(range(0, 1000, 10)).__next__          # every clip takes 10 "seconds"
    manifest = gen.generate(tmp_path, "s1", 100, CONFIGS, prompts(3), fake, log=lines.append, clock=clock)
    rows = prompts(3)
    assert [(c[0], c[2]) for c in fake.calls] == [(CONFIGS[s]["name"], 100 + r["index"]) for r in rows for s in "AB"]
    assert fake.calls[0][1] == fake.calls[1][1] == rows[0]["prompt"]
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest and manifest["id"] == "s1" and manifest["seed"] == 100
    assert manifest["configs"] == CONFIGS and len(manifest["secret"]) == 32
    assert [(p["id"], p["theme"], p["seed"], p["files"]) for p in manifest["pairs"]] == [
        (f"p{r['index']:03d}", r["theme"], 100 + r["index"],
         {"A": f"clips/p{r['index']:03d}_A.mp4", "B": f"clips/p{r['index']:03d}_B.mp4"}) for r in rows]
    for p in manifest["pairs"]:
        for name in p["files"].values():
            assert b"config" not in (tmp_path / name).read_bytes()    # metadata scrubbed on the way in
    assert len(lines) == 6 and lines[0].startswith("[1/6] p000 A (sports) ") and lines[0].endswith("ETA 50s")
    assert lines[-1].startswith("[6/6] p") and lines[-1].endswith("10.0s, ETA done")
    assert not (tmp_path / ".partial").exists()
    assert len(StudyStore(tmp_path).pairs) == 3                        # the rating page can open it


def test_an_interrupted_run_resumes_without_redoing_finished_clips(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(3), FakeComfy(fail_at=4), log=lambda _: None)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [(p["id"], sorted(p["files"])) for p in manifest["pairs"]] == [("p000", ["A", "B"]), ("p012", ["A"])]
    (tmp_path / "clips" / "p000_B.mp4").unlink()                      # a recorded clip whose file went away
    second, lines = FakeComfy(), []
    manifest = gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(3), second, log=lines.append)
    assert [(c[0], c[2]) for c in second.calls] == [("AnimateDiff v2 25 steps", 5), ("AnimateDiff v2 25 steps", 17),
                                                    ("Lightning 4-step", 28), ("AnimateDiff v2 25 steps", 28)]
    assert lines[0] == f"resuming s1: 2 of 6 clips already in {tmp_path}" and lines[1].startswith("[3/6] p000 B")
    assert all(sorted(p["files"]) == ["A", "B"] for p in manifest["pairs"]) and len(manifest["pairs"]) == 3
    third = FakeComfy()
    gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(3), third, log=lambda _: None)
    assert third.calls == []                                           # all done: nothing queued
    more = FakeComfy()                                                 # extend the trial to 4 prompts
    gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(4), more, log=lambda _: None)
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
    (tmp_path / "closed.json").write_text("{}")
    with pytest.raises(gen.StudyError, match="closed"):
        gen.generate(tmp_path, "s1", 5, CONFIGS, prompts(1), FakeComfy(), log=lambda _: None)


def test_bad_input_is_refused_with_the_fix(tmp_path):
    with pytest.raises(gen.StudyError, match="--id 'a/b'"):
        gen.generate(tmp_path, "a/b", 5, CONFIGS, prompts(1), FakeComfy())

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
