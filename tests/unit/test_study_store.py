"""The study store (study/store.py): blind, balanced, reproducible left/right; votes stored as they come, a second
vote replacing the first; bad requests refused with nothing stored; names hidden until the study is closed."""
from __future__ import annotations

import json

import pytest

from adlightning.study.stats import CRITERIA, summarize
from adlightning.study.store import (NotRevealed, StudyClosed, StudyInputError, StudyStore, left_sides, pair_order)
from adlightning.study.generate import StudyError
from tests.unit.study_fixtures import make_study

PAIRS = [f"p{i:03d}" for i in range(100)]


def test_left_right_is_balanced_for_every_rater():
    for rater in ("ann", "bob", "chen", "dana"):
        sides = left_sides(7, rater, PAIRS)
        assert list(sides.values()).count("A") == 50, rater   # exactly half, not merely about half
    odd = left_sides(7, "ann", PAIRS[:9])
    assert list(odd.values()).count("A") in (4, 5)


def test_left_right_is_reproducible_from_the_seed_and_differs_across_raters_and_seeds():
    assert left_sides(7, "ann", PAIRS) == left_sides(7, "ann", list(reversed(PAIRS)))
    ann, bob = left_sides(7, "ann", PAIRS), left_sides(7, "bob", PAIRS)
    differ = sum(ann[p] != bob[p] for p in PAIRS)
    assert 30 < differ < 70, differ                        # independent layouts: about half the pairs differ
    other_seed = left_sides(8, "ann", PAIRS)
    assert 30 < sum(ann[p] != other_seed[p] for p in PAIRS) < 70
    # each pair is shown with A on the left to about half of many raters
    raters = [f"r{i}" for i in range(200)]
    layouts = [left_sides(7, r, PAIRS[:10]) for r in raters]
    for p in PAIRS[:10]:
        assert 70 < sum(l[p] == "A" for l in layouts) < 130


def test_pair_order_is_per_rater():
    assert sorted(pair_order(7, "ann", PAIRS)) == PAIRS
    assert pair_order(7, "ann", PAIRS) == pair_order(7, "ann", PAIRS)
    assert pair_order(7, "ann", PAIRS) != pair_order(7, "bob", PAIRS)


def test_votes_are_unblinded_stored_at_once_and_a_second_vote_replaces_the_first(tmp_path):
    make_study(tmp_path)
    store = StudyStore(tmp_path)
    left = left_sides(store.seed, "ann", list(store.pairs))["p001"]
    right = "B" if left == "A" else "A"
    store.record("ann", "p001", "overall quality", "left")
    lines = (tmp_path / "votes.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["choice"] == left      # on disk before any close or flush
    store.record("ann", "p001", "overall quality", "right")                # changed her mind
    store.record(" ann ", "p001", "motion amplitude", "tie")                # the name is trimmed
    assert len((tmp_path / "votes.jsonl").read_text().splitlines()) == 3    # the log keeps every click ...
    votes = StudyStore(tmp_path).votes()                                    # ... a fresh load counts the last
    assert sorted((v.criterion, v.choice) for v in votes) == [("motion amplitude", "tie"), ("overall quality", right)]
    tally = summarize(votes)["criteria"]["overall quality"]
    assert (tally.a, tally.b, tally.tie) == ((1, 0, 0) if right == "A" else (0, 1, 0))


def test_session_resumes_with_the_raters_votes_in_left_right_terms(tmp_path):
    make_study(tmp_path, n_pairs=3)
    store = StudyStore(tmp_path)
    for criterion in CRITERIA:
        store.record("ann", "p002", criterion, "left")
    store.record("ann", "p000", "appearance distortion", "right")
    store.record("bob", "p001", "appearance distortion", "tie")
    session = StudyStore(tmp_path).session("ann")
    assert [p["pair"] for p in session["pairs"]] == pair_order(store.seed, "ann", ["p000", "p001", "p002"])
    votes = {p["pair"]: p["votes"] for p in session["pairs"]}
    assert votes == {"p002": {c: "left" for c in CRITERIA}, "p000": {"appearance distortion": "right"}, "p001": {}}
    assert session["finished"] == 1 and session["criteria"] == list(CRITERIA) and not session["closed"]
    # the two clips of a pair are opaque tokens, swapped according to the rater's layout
    pair = next(p for p in session["pairs"] if p["pair"] == "p000")
    left = left_sides(store.seed, "ann", list(store.pairs))["p000"]
    assert store.clip_path(pair["left"]) == tmp_path / f"clips/p000_{left}.mp4"
    assert {store.clip_path(pair["left"]), store.clip_path(pair["right"])} == \
        {tmp_path / "clips/p000_A.mp4", tmp_path / "clips/p000_B.mp4"}
    assert store.clip_path("p000_A") is None


@pytest.mark.parametrize("args, message", [
    (("ann", "p999", "overall quality", "left"), "unknown pair 'p999'"),
    (("ann", "p000", "smell", "left"), "unknown criterion 'smell'"),
    (("ann", "p000", "overall quality", "A"), "choice 'A': give one of left, right, tie"),
    (("", "p000", "overall quality", "left"), "rater name ''"),
    ((None, "p000", "overall quality", "left"), "rater name None"),
])
def test_bad_votes_are_refused_and_nothing_is_stored(tmp_path, args, message):
    make_study(tmp_path)
    store = StudyStore(tmp_path)
    with pytest.raises(StudyInputError, match=message):
        store.record(*args)
    assert not (tmp_path / "votes.jsonl").exists() and store.votes() == []


def test_names_stay_hidden_until_close_and_no_votes_after(tmp_path):
    make_study(tmp_path)
    store = StudyStore(tmp_path)
    store.record("ann", "p000", "overall quality", "tie")
    with pytest.raises(NotRevealed, match="still open"):
        store.configs()
    assert "configs" not in json.dumps(store.session("ann")) and "Lightning" not in json.dumps(store.session("ann"))
    closed = store.close()
    assert closed["raters"] == 1 and closed["votes"] == 1
    assert store.close() == closed                                          # closing twice changes nothing
    assert store.configs()["A"]["name"] == "Lightning 4-step"
    with pytest.raises(StudyClosed, match="closed"):
        store.record("ann", "p000", "overall quality", "left")
    assert len(store.votes()) == 1 and StudyStore(tmp_path).session("ann")["closed"]


def test_a_manifest_pointing_at_missing_files_is_refused_with_the_fix(tmp_path):
    make_study(tmp_path)
    (tmp_path / "clips" / "p002_B.mp4").unlink()
    with pytest.raises(StudyError, match=r"incomplete: pair p002 clip B: .*p002_B.mp4 is missing\. Run "
                                         r"tools/study.py generate again"):
        StudyStore(tmp_path)
    with pytest.raises(StudyError, match="has no manifest.json"):
        StudyStore(tmp_path / "nowhere")


def test_a_torn_vote_line_names_the_line(tmp_path):
    make_study(tmp_path)
    StudyStore(tmp_path).record("ann", "p000", "overall quality", "tie")
    with open(tmp_path / "votes.jsonl", "a") as f:
        f.write('{"rater": "ann", "pa')
    with pytest.raises(StudyError, match="votes.jsonl line 2 is not a vote"):
        StudyStore(tmp_path)
