"""Statistics of a blind A/B study: each rater judges each pair of clips (configuration A against B, shown in random
left/right order and un-blinded before counting) on each criterion as A, B or indistinguishable ("tie").

Per criterion (and per theme and criterion): the share of votes for A, for B and tie, each with a 95% Wilson score
interval, and a two-sided exact sign test over the decided votes (ties dropped, as the sign test does): the chance of a
split at least this uneven if A and B were equally preferred.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

CRITERIA = ("video-text relevance", "appearance distortion", "appearance aesthetics", "motion naturalness",
            "motion amplitude", "overall quality")
CHOICES = ("A", "B", "tie")
Z95 = 1.959963984540054            # two-sided 95% normal quantile


@dataclass(frozen=True)
class Vote:
    rater: str
    pair: str                      # the prompt / pair id
    theme: str
    criterion: str
    choice: str                    # "A", "B" or "tie", after un-blinding left/right


@dataclass(frozen=True)
class Tally:
    a: int
    b: int
    tie: int

    @property
    def total(self) -> int:
        return self.a + self.b + self.tie

    @property
    def decided(self) -> int:
        return self.a + self.b

    def share(self, choice: str) -> float:
        """Share of all votes (ties included) for choice; 0.0 with no votes."""
        count = {"A": self.a, "B": self.b, "tie": self.tie}[choice]
        return count / self.total if self.total else 0.0

    def interval(self, choice: str) -> tuple[float, float]:
        count = {"A": self.a, "B": self.b, "tie": self.tie}[choice]
        return wilson_interval(count, self.total)

    @property
    def p_value(self) -> float:
        return sign_test_p(self.a, self.b)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion successes/n; (0, 1), i.e. no information, when n is 0. Unlike the
    normal approximation it stays inside [0, 1] and is sensible at 0/n and n/n, which small studies hit."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # at 0/n and n/n a bound is exactly 0 or 1; say so rather than leave float rounding's 1e-17
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def sign_test_p(a: int, b: int) -> float:
    """Two-sided exact sign test (binomial, p = 1/2) of a votes against b: P(a split at least as uneven) =
    2 * P(X <= min(a, b)) for X ~ Binomial(a + b, 1/2), capped at 1; 1.0 with no decided votes."""
    if a < 0 or b < 0:
        raise ValueError(f"vote counts must not be negative, got {a} and {b}")
    n = a + b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(a, b) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def latest_votes(votes: Iterable[Vote]) -> list[Vote]:
    """One vote per (rater, pair, criterion): a later vote replaces an earlier one rather than counting twice."""
    latest: dict[tuple[str, str, str], Vote] = {}
    for vote in votes:
        if vote.choice not in CHOICES:
            raise ValueError(f"vote of {vote.rater!r} on pair {vote.pair!r}: choice must be one of {CHOICES}, "
                             f"got {vote.choice!r}")
        latest[(vote.rater, vote.pair, vote.criterion)] = vote
    return list(latest.values())


def tally(votes: Iterable[Vote]) -> Tally:
    counts = {"A": 0, "B": 0, "tie": 0}
    for vote in votes:
        counts[vote.choice] += 1
    return Tally(counts["A"], counts["B"], counts["tie"])


def summarize(votes: Iterable[Vote]) -> dict:
    """{"raters": n, "criteria": {criterion: Tally}, "themes": {theme: {criterion: Tally}}} over the latest vote of
    each rater on each pair and criterion; criteria in CRITERIA order first, any others after."""
    votes = latest_votes(votes)
    criteria = [c for c in CRITERIA if any(v.criterion == c for v in votes)]
    criteria += sorted({v.criterion for v in votes} - set(criteria))
    themes = sorted({v.theme for v in votes})
    return {
        "raters": len({v.rater for v in votes}),
        "criteria": {c: tally(v for v in votes if v.criterion == c) for c in criteria},
        "themes": {t: {c: tally(v for v in votes if v.theme == t and v.criterion == c) for c in criteria
                       if any(v.theme == t and v.criterion == c for v in votes)} for t in themes},
    }
