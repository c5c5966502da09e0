"""A/B study statistics (study/stats.py) against values worked out by hand or from the closed-form definitions."""
import math

import pytest

from adlightning.study.stats import CRITERIA, Tally, Vote, latest_votes, sign_test_p, summarize, wilson_interval


def test_sign_test_exact_values():
    # 8 against 2: n = 10, P(X <= 2) = (1 + 10 + 45) / 1024, doubled
    assert sign_test_p(8, 2) == pytest.approx(2 * 56 / 1024)
    assert sign_test_p(2, 8) == sign_test_p(8, 2)
    # 6 against 0: 2 / 2^6
    assert sign_test_p(6, 0) == pytest.approx(0.03125)
    # 5 against 5 and 1 against 0 are as even as they can be: 1
    assert sign_test_p(5, 5) == 1.0 and sign_test_p(1, 0) == 1.0
    # 9 against 1: 2 * 11 / 1024 (the textbook 0.0215)
    assert sign_test_p(9, 1) == pytest.approx(0.021484375)
    assert sign_test_p(0, 0) == 1.0
    with pytest.raises(ValueError):
        sign_test_p(-1, 2)


def test_wilson_interval_matches_published_values():
    # 8 of 10 at 95%: (0.4902, 0.9433) (e.g. Newcombe 1998, and any Wilson calculator)
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    # 0 of 10: lower bound 0, upper z^2 / (n + z^2) = 3.8415 / 13.8415
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(3.841459 / 13.841459, abs=1e-6)
    # 10 of 10 mirrors it
    assert wilson_interval(10, 10) == pytest.approx((1 - 3.841459 / 13.841459, 1.0), abs=1e-6)
    # 1 of 2: symmetric about 1/2
    low, high = wilson_interval(1, 2)
    assert low + high == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def votes(rater: str, pair: str, theme: str, choices: dict[str, str]) -> list[Vote]:
    return [Vote(rater, pair, theme, criterion, choice) for criterion, choice in choices.items()]


def test_summary_with_ties_per_criterion_and_theme():
    overall = "overall quality"
    ballots = (votes("ann", "p1", "nature", {overall: "A", "motion amplitude": "tie"})
               + votes("ann", "p2", "urban", {overall: "A", "motion amplitude": "B"})
               + votes("bob", "p1", "nature", {overall: "tie", "motion amplitude": "B"})
               + votes("bob", "p2", "urban", {overall: "B", "motion amplitude": "B"}))
    report = summarize(ballots)
    assert report["raters"] == 2
    assert list(report["criteria"]) == ["motion amplitude", overall]         # CRITERIA order
    assert report["criteria"][overall] == Tally(a=2, b=1, tie=1)
    assert report["criteria"][overall].share("A") == 0.5 and report["criteria"][overall].share("tie") == 0.25
    assert report["criteria"][overall].p_value == 1.0                         # 2 vs 1: 2 * (1 + 3) / 8 > 1
    assert report["criteria"]["motion amplitude"] == Tally(a=0, b=3, tie=1)
    assert report["criteria"]["motion amplitude"].p_value == pytest.approx(0.25)   # 2 * 1 / 2^3
    assert report["themes"]["nature"][overall] == Tally(a=1, b=0, tie=1)
    assert report["themes"]["urban"]["motion amplitude"] == Tally(a=0, b=2, tie=0)
    assert report["criteria"][overall].interval("A") == wilson_interval(2, 4)


def test_all_indistinguishable():
    ballots = [v for r in ("ann", "bob", "cy") for v in votes(r, "p1", "sports", {c: "tie" for c in CRITERIA})]
    report = summarize(ballots)
    for criterion in CRITERIA:
        t = report["criteria"][criterion]
        assert t == Tally(a=0, b=0, tie=3) and t.decided == 0
        assert t.share("tie") == 1.0 and t.share("A") == 0.0 and t.p_value == 1.0
        assert t.interval("A") == (0.0, pytest.approx(3.841459 / 6.841459, abs=1e-6))


def test_one_rater_and_a_replaced_vote():
    ballots = (votes("ann", "p1", "wildlife", {"overall quality": "B"})
               + votes("ann", "p2", "wildlife", {"overall quality": "A"})
               + votes("ann", "p1", "wildlife", {"overall quality": "A"}))     # ann changes her mind on p1
    assert len(latest_votes(ballots)) == 2
    report = summarize(ballots)
    assert report["raters"] == 1
    assert report["criteria"]["overall quality"] == Tally(a=2, b=0, tie=0)
    assert report["criteria"]["overall quality"].p_value == pytest.approx(0.5)   # 2 * 1 / 4
    with pytest.raises(ValueError, match="choice must be one of"):
        summarize([Vote("ann", "p1", "x", "overall quality", "left")])
    assert summarize([])["criteria"] == {} and math.isclose(Tally(0, 0, 0).share("A"), 0.0)
