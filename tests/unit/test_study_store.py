"""The study store (study/store.py) and its vote log (study/votes.py): votes un-blinded with the keyed layout, stored
and fsynced at once, a second vote replacing the first; bad requests refused with the field named and nothing
stored; the bounds on raters and vote lines; names hidden until the organiser closes; a torn last line skipped and
repaired."""
from __future__ import annotations

import json
import os

import pytest

from adlightning.study.blind import left_side, pair_order
from adlightning.study.manifest import StudyError
from adlightning.study.stats import CRITERIA, summarize
from adlightning.study.store import (NotOrganiser, NotRevealed, StudyClosed, StudyFull, StudyInputError, StudyStore,
                                     check_rater)
from tests.unit.study_fixtures import ORGANISER, make_study


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    make_study(folder)
    return folder


def secret(folder) -> str:
    return json.loads((folder / "manifest.json").read_text())["secret"]


def test_votes_are_unblinded_stored_at_once_and_a_second_vote_replaces_the_first(folder, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    store = StudyStore(folder)
    left = left_side(secret(folder), "ann", "p001")
    right = "B" if left == "A" else "A"
    store.record("ann", "p001", "overall quality", "left")
    lines = (folder / "votes.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["choice"] == left      # on disk before any close or flush
    assert len(synced) == 2                                                 # the line, and the folder (new file)
    store.record("ann", "p001", "overall quality", "right")                # changed her mind
    store.record(" ann ", "p001", "motion amplitude", "tie")                # the name is trimmed
    assert len(synced) == 4
    assert len((folder / "votes.jsonl").read_text().splitlines()) == 3      # the log keeps every click ...
    votes = StudyStore(folder).votes()                                      # ... a fresh load counts the last
    assert sorted((v.criterion, v.choice) for v in votes) == [("motion amplitude", "tie"), ("overall quality", right)]
    tally = summarize(votes)["criteria"]["overall quality"]
    assert (tally.a, tally.b, tally.tie) == ((1, 0, 0) if right == "A" else (0, 1, 0))


def test_session_resumes_with_the_raters_votes_in_left_right_terms(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    manifest = make_study(folder, n_pairs=3)
    store = StudyStore(folder)
    for criterion in CRITERIA:
        store.record("ann", "p002", criterion, "left")
    store.record("ann", "p000", "appearance distortion", "right")
    store.record("bob", "p001", "appearance distortion", "tie")
    session = StudyStore(folder).session("ann")
    assert [p["pair"] for p in session["pairs"]] == pair_order(secret(folder), "ann", ["p000", "p001", "p002"])
    votes = {p["pair"]: p["votes"] for p in session["pairs"]}
    assert votes == {"p002": {c: "left" for c in CRITERIA}, "p000": {"appearance distortion": "right"}, "p001": {}}
    assert session["finished"] == 1 and session["criteria"] == list(CRITERIA) and not session["closed"]
    # the two clips of a pair are per-rater tokens, swapped according to the rater's layout
    pair = next(p for p in session["pairs"] if p["pair"] == "p000")
    left = left_side(secret(folder), "ann", "p000")
    files = manifest["pairs"][0]["files"]
    assert store.clip_name(pair["left"]) == files[left]
    assert {store.clip_name(pair["left"]), store.clip_name(pair["right"])} == set(files.values())
    bob = next(p for p in store.session("bob")["pairs"] if p["pair"] == "p000")
    assert {bob["left"], bob["right"]}.isdisjoint({pair["left"], pair["right"]})    # bob's URLs are his own
    assert {store.clip_name(bob["left"]), store.clip_name(bob["right"])} == set(files.values())
    for bad in ("p000_A", pair["left"][:-1] + ("0" if pair["left"][-1] != "0" else "1"), "../x", None, "A" * 48):
        assert store.clip_name(bad) is None


@pytest.mark.parametrize("args, message", [
    (("ann", "p999", "overall quality", "left"), "pair: unknown pair 'p999'"),
    (("ann", ["p000"], "overall quality", "left"), "pair: unknown pair list"),
    (("ann", {"p000": 1}, "overall quality", "left"), "pair: unknown pair dict"),
    (("ann", "p000", "smell", "left"), "criterion: unknown criterion 'smell'"),
    (("ann", "p000", None, "left"), "criterion: unknown criterion NoneType"),
    (("ann", "p000", "overall quality", "A"), "choice: 'A' is not one of left, right, tie"),
    (("", "p000", "overall quality", "left"), "rater: name ''"),
    ((None, "p000", "overall quality", "left"), "rater: give your name as text, got NoneType"),
    (("a\ud800b", "p000", "overall quality", "left"), "rater: the name is not valid text"),
    (("a\x00b", "p000", "overall quality", "left"), "rater: name"),
    (("x" * 65, "p000", "overall quality", "left"), "rater: name"),
])
def test_bad_votes_are_refused_naming_the_field_and_nothing_is_stored(folder, args, message):
    store = StudyStore(folder)
    with pytest.raises(StudyInputError, match=f"^{message}"):
        store.record(*args)
    assert not (folder / "votes.jsonl").exists() and store.votes() == []


def test_rater_names_are_normalised():
    assert check_rater("  Zoë ") == check_rater("Zoe\u0308") == "Zoë"


def test_names_stay_hidden_until_the_organiser_closes_and_no_votes_after(folder):
    store = StudyStore(folder)
    store.record("ann", "p000", "overall quality", "tie")
    with pytest.raises(NotRevealed, match="still open"):
        store.configs()
    text = json.dumps([store.session("ann"), store.summary()])
    assert "Lightning" not in text and "configs" not in text and secret(folder) not in text
    for wrong in ("s1", "", None, ORGANISER.upper(), ["x"]):
        with pytest.raises(NotOrganiser, match="organiser secret"):
            store.check_organiser(wrong)
    store.check_organiser(ORGANISER)
    closed = store.close()
    assert closed["raters"] == 1 and closed["votes"] == 1
    assert store.close() == closed                                          # closing twice changes nothing
    assert store.configs()["A"]["name"] == "Lightning 4-step"
    assert (folder / "report.md").is_file() and "Lightning 4-step" in (folder / "report.md").read_text()
    with pytest.raises(StudyClosed, match="closed"):
        store.record("ann", "p000", "overall quality", "left")
    assert len(store.votes()) == 1 and StudyStore(folder).session("ann")["closed"]


def test_raters_and_vote_lines_are_bounded(folder):
    store = StudyStore(folder, max_raters=2)
    store.record("ann", "p000", "overall quality", "tie")
    store.record("bob", "p000", "overall quality", "tie")
    with pytest.raises(StudyFull, match="has its 2 raters already"):
        store.record("cy", "p000", "overall quality", "tie")
    store.record("ann", "p001", "overall quality", "tie")                  # known raters go on
    assert store.max_lines_per_rater == 100                                 # 4 pairs x 6 criteria x 4 < 100
    for i in range(99):
        store.record("bob", "p001", "overall quality", ("left", "right")[i % 2])
    with pytest.raises(StudyFull, match=r"'bob' has cast 100 votes \(changes included\)"):
        store.record("bob", "p001", "overall quality", "tie")
    assert len((folder / "votes.jsonl").read_text().splitlines()) == 102
    assert StudyStore(folder, max_raters=2)._lines["bob"] == 100            # the count survives a restart


def test_a_torn_last_line_is_skipped_and_repaired_on_the_next_vote(folder):
    StudyStore(folder).record("ann", "p000", "overall quality", "tie")
    with open(folder / "votes.jsonl", "a") as f:
        f.write('{"rater": "ann", "pa')                                    # the server killed mid-write
    store = StudyStore(folder)
    assert [v.pair for v in store.votes()] == ["p000"] and store.session("ann")["pairs"]
    store.record("ann", "p001", "overall quality", "left")
    lines = (folder / "votes.jsonl").read_text().split("\n")
    assert lines[-1] == "" and len(lines) == 3 and all(json.loads(line) for line in lines[:-1])
    assert len(StudyStore(folder).votes()) == 2


def test_a_damaged_line_elsewhere_is_skipped_not_fatal(folder):
    store = StudyStore(folder)
    store.record("ann", "p000", "overall quality", "tie")
    with open(folder / "votes.jsonl", "a") as f:
        f.write("garbage\n[1]\n" + json.dumps({"rater": "x", "pair": "p999", "criterion": "overall quality",
                                                "choice": "A"}) + "\n")
    store = StudyStore(folder)
    store.record("bob", "p001", "overall quality", "left")
    assert sorted(v.rater for v in StudyStore(folder).votes()) == ["ann", "bob"]


def test_a_study_with_a_missing_clip_is_refused_with_the_fix(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    name = manifest["pairs"][2]["files"]["B"]
    (folder / name).unlink()
    with pytest.raises(StudyError, match=f"{name} is missing: run tools/study.py generate again"):
        StudyStore(folder)
    with pytest.raises(StudyError, match="no manifest.json"):
        StudyStore(folder.parent / "nowhere")


def test_the_folder_must_carry_the_studys_name(folder):
    renamed = folder.rename(folder.parent / "other")
    with pytest.raises(StudyError, match="id 's1' is not the folder's name 'other'"):
        StudyStore(renamed)
