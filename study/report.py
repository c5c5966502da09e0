"""The study's report from its manifest and votes: JSON, Markdown and an SVG chart (hand-written; no plotting library).

Per criterion: the share of votes for A, for B and indistinguishable, each with a 95% Wilson interval, and the
two-sided sign test over the decided votes (stats.py); the same per theme; and the overall preference. Overall
preference counts one verdict per rater and pair (the configuration more of the six criteria favoured, a tie when
as many favoured each): the six criteria of one judgement are not independent votes, so pooling them would overstate
the evidence.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from .stats import CRITERIA, Tally, Vote, latest_votes, summarize

OVERALL = "overall preference"
COLORS = {"A": "#3b6fd8", "tie": "#b9bec7", "B": "#e8833a"}


def cell(t: Tally) -> dict:
    out = {"votes": t.total, "decided": t.decided, "p": t.p_value}
    for choice in ("A", "tie", "B"):
        low, high = t.interval(choice)
        out[choice] = {"count": {"A": t.a, "B": t.b, "tie": t.tie}[choice], "share": t.share(choice),
                       "low": low, "high": high}
    return out


def overall_tally(votes: list[Vote]) -> Tally:
    by_judgement: dict[tuple[str, str], list[str]] = {}
    for v in votes:
        by_judgement.setdefault((v.rater, v.pair), []).append(v.choice)
    a = b = tie = 0
    for choices in by_judgement.values():
        margin = choices.count("A") - choices.count("B")
        a, b, tie = a + (margin > 0), b + (margin < 0), tie + (margin == 0)
    return Tally(a, b, tie)


def config_name(config: dict, side: str) -> str:
    return str(config.get("name") or config.get("workflow") or side)


def build(manifest: dict, votes: list[Vote]) -> dict:
    votes = latest_votes(votes)
    s = summarize(votes)
    criteria = [c for c in manifest.get("criteria") or CRITERIA]
    rows = {c: cell(s["criteria"].get(c, Tally(0, 0, 0))) for c in criteria}
    themes = {}
    for theme in sorted({p["theme"] for p in manifest["pairs"]}):
        in_theme = [v for v in votes if v.theme == theme]
        themes[theme] = {c: cell(s["themes"].get(theme, {}).get(c, Tally(0, 0, 0))) for c in criteria}
        themes[theme][OVERALL] = cell(overall_tally(in_theme))
    return {
        "study": manifest["id"],
        "configs": {side: {"name": config_name(manifest["configs"][side], side), **manifest["configs"][side]}
                    for side in ("A", "B")},
        "pairs": len(manifest["pairs"]),
        "raters": s["raters"],
        "votes": len(votes),
        "criteria": rows,
        OVERALL.replace(" ", "_"): cell(overall_tally(votes)),
        "themes": themes,
        "note": "shares of all votes with 95% Wilson intervals; p: two-sided exact sign test over the decided votes "
                "(indistinguishable dropped); overall preference: one verdict per rater and pair, the configuration "
                "more criteria favoured",
    }


# --- Markdown --------------------------------------------------------------------------------------------------------
def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def share_text(c: dict, choice: str) -> str:
    v = c[choice]
    return f"{pct(v['share'])} ({100 * v['low']:.0f}-{100 * v['high']:.0f}%)" if c["votes"] else "-"


def p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_label(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(c: dict, names: dict) -> str:
    if not c["decided"]:
        return "no decided votes"
    if c["p"] >= 0.05:
        return "no significant difference"
    return f"{names['A'] if c['A']['count'] > c['B']['count'] else names['B']} preferred"


def markdown(report: dict) -> str:
    names = {side: report["configs"][side]["name"] for side in ("A", "B")}
    overall = report[OVERALL.replace(" ", "_")]
    out = [f"# A/B study `{report['study']}`", "",
           f"**A** = {names['A']} · **B** = {names['B']} · {report['pairs']} pairs · {report['raters']} rater(s) · "
           f"{report['votes']} votes", "",
           f"Overall preference (one verdict per rater and pair): {verdict(overall, names)} — A {share_text(overall, 'A')}, "
           f"indistinguishable {share_text(overall, 'tie')}, B {share_text(overall, 'B')}, {p_label(overall['p'])}.",
           "", "![chart](report.svg)", "", "## Per criterion", "",
           "| criterion | A | indistinguishable | B | decided | sign test p | verdict |", "|---|---|---|---|---|---|---|"]
    for criterion, c in [*report["criteria"].items(), (OVERALL, overall)]:
        out.append(f"| {criterion} | {share_text(c, 'A')} | {share_text(c, 'tie')} | {share_text(c, 'B')} | "
                   f"{c['decided']} | {p_text(c['p'])} | {verdict(c, names)} |")
    out += ["", "## Per theme", "", "| theme | criterion | A | indistinguishable | B | p |", "|---|---|---|---|---|---|"]
    for theme, rows in report["themes"].items():
        for criterion, c in rows.items():
            out.append(f"| {theme} | {criterion} | {share_text(c, 'A')} | {share_text(c, 'tie')} | "
                       f"{share_text(c, 'B')} | {p_text(c['p'])} |")
    out += ["", f"_{report['note']}._", ""]
    return "\n".join(out)


# --- SVG chart -------------------------------------------------------------------------------------------------------
def svg(report: dict) -> str:
    """Stacked horizontal bars, one per criterion and one for the overall preference: A | indistinguishable | B as
    shares of the votes, each end's 95% interval as a whisker, the sign test p on the right."""
    names = {side: report["configs"][side]["name"] for side in ("A", "B")}
    rows = [*report["criteria"].items(), (OVERALL, report[OVERALL.replace(" ", "_")])]
    label_w, bar_w, right_w, bar_h, gap, top = 190, 520, 150, 30, 12, 92
    width = label_w + bar_w + right_w + 20
    height = top + len(rows) * (bar_h + gap) + 10
    x0 = label_w

    def x(share: float) -> float:
        return x0 + bar_w * share

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="13">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
             f'<text x="12" y="24" font-size="16" font-weight="600">A/B study {escape(report["study"])}: '
             f'{report["pairs"]} pairs, {report["raters"]} rater(s), {report["votes"]} votes</text>']
    lx = 12
    for choice, text in (("A", f"A: {names['A']}"), ("tie", "indistinguishable"), ("B", f"B: {names['B']}")):
        parts.append(f'<rect x="{lx}" y="40" width="14" height="14" fill="{COLORS[choice]}"/>'
                     f'<text x="{lx + 20}" y="52">{escape(text)}</text>')
        lx += 34 + 7.2 * len(text)
    parts.append(f'<text x="12" y="76" fill="#555" font-size="11">whiskers: 95% Wilson interval of A\'s share (top) and B\'s (bottom); '
                 f'p: two-sided sign test over decided votes</text>')
    dash = ' stroke-dasharray="4 3"'   # the even split
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top - 6}" x2="{x(tick):.1f}" '
                     f'y2="{top + len(rows) * (bar_h + gap) - gap + 6}" stroke="#ddd"{dash if tick == 0.5 else ""}/>')
    for i, (criterion, c) in enumerate(rows):
        y = top + i * (bar_h + gap)
        weight = ' font-weight="600"' if criterion == OVERALL else ""
        parts.append(f'<text x="{label_w - 10}" y="{y + bar_h / 2 + 4.5}" text-anchor="end"{weight}>'
                     f'{escape(criterion)}</text>')
        if not c["votes"]:
            parts.append(f'<rect x="{x0}" y="{y}" width="{bar_w}" height="{bar_h}" fill="#f3f4f6"/>'
                         f'<text x="{x(0.5)}" y="{y + bar_h / 2 + 4.5}" text-anchor="middle" fill="#777">no votes</text>')
            continue
        start = 0.0
        for choice in ("A", "tie", "B"):
            share = c[choice]["share"]
            if share > 0:
                parts.append(f'<rect x="{x(start):.1f}" y="{y}" width="{bar_w * share:.1f}" height="{bar_h}" '
                             f'fill="{COLORS[choice]}"><title>{escape(criterion)}: {choice} {pct(share)} '
                             f'({pct(c[choice]["low"])}-{pct(c[choice]["high"])}), {c[choice]["count"]} votes</title></rect>')
                if bar_w * share >= 34:
                    parts.append(f'<text x="{x(start + share / 2):.1f}" y="{y + bar_h / 2 + 4.5}" text-anchor="middle" '
                                 f'fill="{"#222" if choice == "tie" else "#fff"}">{pct(share)}</text>')
            start += share
        mid = y + bar_h / 2
        # A's interval along the top edge of the bar, B's along the bottom, clear of the percentages in the middle
        for level, (lo, hi) in ((y + 4, (c["A"]["low"], c["A"]["high"])),
                                (y + bar_h - 4, (1 - c["B"]["high"], 1 - c["B"]["low"]))):
            parts.append(f'<path d="M{x(lo):.1f} {level - 3}v6M{x(lo):.1f} {level}H{x(hi):.1f}M{x(hi):.1f} {level - 3}v6" '
                         f'stroke="#111" stroke-width="1.3" fill="none"/>')
        bold = ' font-weight="600"' if c["decided"] and c["p"] < 0.05 else ""
        parts.append(f'<text x="{x0 + bar_w + 12}" y="{mid + 4.5}"{bold}>'
                     f'{escape(p_label(c["p"]))} (n={c["decided"]})</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(folder, report: dict) -> dict[str, Path]:
    """report.json, report.md and report.svg in the study folder; their paths."""
    folder = Path(folder)
    paths = {"json": folder / "report.json", "md": folder / "report.md", "svg": folder / "report.svg"}
    paths["json"].write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(report), encoding="utf-8")
    paths["svg"].write_text(svg(report), encoding="utf-8")
    return paths

