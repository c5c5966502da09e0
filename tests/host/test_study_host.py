"""Host tier, the A/B study kit end to end on a real ComfyUI: tools/study.py generate makes a 3-prompt study at
64 px, 8 frames, with two configurations through tools/client.py (deleting what each prompt left in ComfyUI); an
interrupted run resumes; the study's own server (tools/study.py serve) serves it blind; headless Chromium rates every
pair (closing and reopening the tab midway loses no vote), the organiser closes the study with the organiser secret on
the organiser's link and sees the report, whose counts are checked against the clicks un-blinded independently.

The configurations are Lightning 4-step (cfg 1.0) against AnimateDiff v2 (the v2-layout fixture under a v2 name) at
4 steps and cfg 7.5, not the real study's 25 steps: on this CPU each UNet pass of the full-size SD1.5 costs seconds,
and what is under test is the plumbing (two workflows, matched seeds, cfg > 1 with the negative prompt), which 4
steps exercise as well as 25. With ADL_UPDATE_SCREENSHOTS=1 the rating page and the closed study's report are saved
as docs/screenshots/study_page.png and study_report.png (random-weight models: the clips are noise).

Skipped, with the reason, without COMFYUI_PATH (see conftest) or without /usr/bin/chromium.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dev.harness.chromium import CHROMIUM, Chromium, Tab, offline_browser
from dev.harness.models import LIGHTNING_NAME, V2_NAME
from adlightning.study.blind import left_side
from adlightning.study.stats import CRITERIA
from dev.node_defs import REPO
from tests.host.study_serve import StudyServe

STUDY = "host3"
SEED = 5
UPDATE = os.environ.get("ADL_UPDATE_SCREENSHOTS") == "1"
CONFIGS = {
    "A": {"name": "Lightning 4-step", "workflow": "t2v_lightning",
          "overrides": {"motion_module": LIGHTNING_NAME, "steps": 4, "cfg": 1.0}},
    "B": {"name": "AnimateDiff v2, 4 steps, cfg 7.5", "workflow": "t2v_lightning",
          "overrides": {"motion_module": V2_NAME, "steps": 4, "cfg": 7.5}},
}


def choice_for(pair_rank: int, criterion_rank: int) -> str:
    """The test rater's answer: a fixed mix of left, right and indistinguishable."""
    return ("left", "right", "tie", "left")[(pair_rank + criterion_rank) % 4]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium): browser check not run")
    with offline_browser(1000, 1000) as br:
        yield br


def generate(server, root: Path, configs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.study", "generate", "--id", STUDY, "--root", str(root),
                           "--comfy-output", str(server.output_dir), "--server", server.url, "--configs",
                           str(configs), "--prompts", "3", "--size", "64", "--frames", "8", "--seed", str(SEED),
                           "--timeout", "900"], cwd=REPO, capture_output=True, text=True, timeout=3600)


@pytest.fixture(scope="module")
def study(server, tmp_path_factory):
    """The 3-prompt study, generated (and resumed once) through the CLI into a study root outside ComfyUI:
    (folder, organiser secret)."""
    root = tmp_path_factory.mktemp("studies")
    configs = tmp_path_factory.mktemp("study") / "ab.json"
    configs.write_text(json.dumps(CONFIGS))
    first = generate(server, root, configs)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}\n{server.log()[-3000:]}"
    lines = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert [line.split()[0] for line in lines] == [f"[{n}/6]" for n in range(1, 7)], first.stdout
    assert all(" ETA " in line for line in lines) and lines[-1].endswith("ETA done")
    organiser = re.search(r"^organiser secret: (\S+) ", first.stdout, re.M).group(1)
    folder = root / STUDY
    assert f"python -m tools.study serve {folder}" in first.stdout
    # An interruption after some clips: the manifest records them; a clip lost since is made again, nothing else.
    manifest = json.loads((folder / "manifest.json").read_text())
    lost = folder / manifest["pairs"][1]["files"]["B"]
    lost.unlink()
    again = generate(server, root, configs)
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    redone = [line for line in again.stdout.splitlines() if line.startswith("[")]
    assert "resuming host3: 5 of 6 clips already in" in again.stdout and "organiser secret" not in again.stdout
    assert len(redone) == 1 and redone[0].startswith(f"[6/6] {manifest['pairs'][1]['id']} B"), again.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (folder / manifest["pairs"][1]["files"]["B"]).is_file()
    return folder, organiser


@pytest.fixture(scope="module")
def rating(study):
    with StudyServe(study[0].parent) as serve:
        yield serve


def test_generated_study_is_matched_and_blind(server, study):
    av = pytest.importorskip("av")
    study, _ = study
    manifest = json.loads((study / "manifest.json").read_text())
    assert manifest["id"] == STUDY and manifest["seed"] == SEED
    assert [p["theme"] for p in manifest["pairs"]] == ["sports", "nature", "wildlife"]
    assert [p["seed"] for p in manifest["pairs"]] == [SEED + p["index"] for p in manifest["pairs"]]
    for pair in manifest["pairs"]:
        clips = {side: (study / pair["files"][side]).read_bytes() for side in "AB"}
        assert clips["A"] != clips["B"], "two configurations, two different clips"
        for side, data in clips.items():
            assert b"animatediff" not in data.lower() and b"mm_sd_v15" not in data, "the workflow text is scrubbed"
            with av.open(str(study / pair["files"][side])) as video:
                frames = list(video.decode(video=0))
            assert len(frames) == 8 and (frames[0].width, frames[0].height) == (64, 64)
    # ComfyUI's own copies carried the workflow: the generator deleted them, and the prompts' history entries.
    assert not (server.output_dir / "adlightning_study_tmp").exists()
    history = json.dumps(server.get("/history"))
    assert not any(p["prompt"] in history for p in manifest["pairs"]) and V2_NAME not in history


def test_the_study_server_is_blind_and_refuses_bad_input(rating, study):
    status, studies, _ = rating.get("/api/studies")
    assert status == 200 and {"id": STUDY, "pairs": 3, "raters": 0, "closed": False} in studies
    status, session, _ = rating.get(f"/api/{STUDY}/session?rater=probe")
    text = json.dumps(session)
    assert status == 200 and "Lightning" not in text and "v2" not in text and ".mp4" not in text
    pair = session["pairs"][0]
    status, clip, headers = rating.get(f"/clip/{STUDY}/{pair['left']}")
    assert status == 200 and headers["Content-Type"] == "video/mp4" and clip[4:8] == b"ftyp"
    for path, code, message in [
        (f"/api/{STUDY}/configs", 403, "still open"),
        (f"/api/{STUDY}/report.json", 403, "still open"),
        ("/api/nope/session?rater=x", 404, "no study 'nope'"),
        (f"/api/{STUDY}/session?rater=", 400, "rater: name ''"),
        (f"/clip/{STUDY}/p000_A", 404, "no such clip"),
    ]:
        status, answer, _ = rating.get(path)
        assert status == code and message in answer["error"], (path, status, answer)
    for body, message in [({"rater": "probe", "pair": "p999", "criterion": "overall quality", "choice": "left"},
                           "pair: unknown pair 'p999'"),
                          ({"rater": "probe", "pair": pair["pair"], "criterion": "fun", "choice": "left"},
                           "criterion: unknown criterion 'fun'"),
                          ({"rater": "probe", "pair": pair["pair"], "criterion": "overall quality", "choice": "A"},
                           "choice: 'A'")]:
        status, answer, _ = rating.post(f"/api/{STUDY}/vote", body)
        assert status == 400 and answer["error"].startswith(message), answer
    assert not (study[0] / "votes.jsonl").exists(), "refused votes store nothing"
    status, answer, _ = rating.post(f"/api/{STUDY}/close", {"organiser": STUDY})
    assert status == 403 and answer["error"].startswith("organiser:")


def open_study(tab: Chromium, rating) -> None:
    tab.navigate(f"{rating.url}/?study={STUDY}")
    tab.wait_for("!document.getElementById('login').hidden || !document.getElementById('rating').hidden", 60,
                 "the study page")


def pressed(tab: Chromium) -> dict:
    return tab.evaluate("""Object.fromEntries([...document.querySelectorAll('#criteria button[aria-pressed=true]')]
        .map(b => [b.dataset.criterion, b.dataset.choice]))""")


def rate(tab: Chromium, pair_rank: int, criteria) -> None:
    for i, criterion in enumerate(criteria):
        choice = choice_for(pair_rank, CRITERIA.index(criterion))
        tab.evaluate(f"document.querySelector('#criteria button[data-criterion=\"{criterion}\"]"
                     f"[data-choice=\"{choice}\"]').click(), true")
        tab.wait_for(f"document.querySelector('#criteria button[data-criterion=\"{criterion}\"]"
                     f"[data-choice=\"{choice}\"]').getAttribute('aria-pressed') === 'true'", 30, f"vote {criterion}")


def current_pair(tab: Chromium) -> str:
    return tab.evaluate("document.getElementById('pairLabel').textContent")


def test_rating_page_rates_every_pair_survives_a_closed_tab_and_reports(rating, study, browser, tmp_path):
    folder, organiser = study
    shots = REPO / "docs" / "screenshots" if UPDATE else tmp_path
    tab = Tab(browser)
    tab.navigate(rating.url)                                            # the list of studies
    tab.wait_for("document.querySelector('#studies a') !== null", 60, "the list of studies")
    assert tab.evaluate("document.querySelector('#studies a').href") == f"{rating.url}/?study={STUDY}"
    open_study(tab, rating)
    tab.evaluate("document.getElementById('rater').value = 'alice', "
                 "document.getElementById('start').click(), true")
    tab.wait_for("!document.getElementById('rating').hidden", 60, "the first pair")
    tab.wait_for("['left', 'right'].every(id => document.getElementById(id).readyState >= 2)", 120,
                 "both clips to load in the browser")
    assert tab.evaluate("document.getElementById('organiser').hidden"), "raters see no close control"
    session = rating.get(f"/api/{STUDY}/session?rater=alice")[1]
    order = [p["pair"] for p in session["pairs"]]
    assert tab.evaluate("document.getElementById('progressText').textContent") == "0 of 3 pairs rated"

    rate(tab, 0, CRITERIA)
    # Changing one's mind: a second vote on the same criterion replaces the first (checked in the report below).
    final = choice_for(0, CRITERIA.index("overall quality"))
    for choice in ("tie" if final != "tie" else "left", final):
        button = f"document.querySelector('#criteria button[data-criterion=\"overall quality\"][data-choice=\"{choice}\"]')"
        tab.evaluate(f"{button}.click(), true")
        tab.wait_for(f"{button}.getAttribute('aria-pressed') === 'true'", 30, f"the vote changed to {choice}")
    tab.evaluate("document.getElementById('next').click(), true")
    tab.wait_for("document.getElementById('pairLabel').textContent === 'pair 2 of 3'", 30, "the second pair")
    rate(tab, 1, CRITERIA[:3])
    half = pressed(tab)
    tab.save_page_png(shots / "study_page.png", 1000)
    tab.close()                                                         # the rater closes the tab midway

    tab = Tab(browser)                                                  # ... and comes back later
    open_study(tab, rating)
    tab.wait_for("!document.getElementById('rating').hidden", 60, "the page to resume without asking the name again")
    assert current_pair(tab) == "pair 2 of 3", "resumes at the first unfinished pair"
    assert pressed(tab) == half, "the votes given before the tab closed are all there"
    assert tab.evaluate("document.getElementById('progressText').textContent") == "1 of 3 pairs rated"
    rate(tab, 1, CRITERIA[3:])
    tab.evaluate("document.getElementById('next').click(), true")
    tab.wait_for("document.getElementById('pairLabel').textContent === 'pair 3 of 3'", 30, "the third pair")
    rate(tab, 2, CRITERIA)
    tab.evaluate("document.getElementById('next').click(), true")      # "Finish"
    tab.wait_for("!document.getElementById('done').hidden", 30, "the thank-you")
    assert tab.evaluate("document.getElementById('progressText').textContent") == "all 3 pairs rated, thank you"
    assert tab.evaluate("document.getElementById('organiser').hidden")
    errors = [e for e in tab.console_errors() if rating.url in e]
    tab.close()
    assert errors == []

    # The organiser's link: the close form, and the secret printed when the study was made.
    tab = Tab(browser)
    tab.navigate(f"{rating.url}/?study={STUDY}&organiser")
    tab.wait_for("!document.getElementById('organiser').hidden", 60, "the organiser's close form")
    tab.evaluate(f"document.getElementById('secret').value = '{STUDY}', "
                 "document.getElementById('close').click(), true")          # the public id does not close it
    tab.wait_for("!document.getElementById('error').hidden", 30, "the refusal")
    assert "organiser secret" in tab.evaluate("document.getElementById('error').textContent")
    assert not (folder / "closed.json").exists()
    tab.evaluate(f"document.getElementById('secret').value = '{organiser}', "
                 "document.getElementById('close').click(), true")
    tab.wait_for("!document.getElementById('closed').hidden && document.getElementById('chart').complete && "
                 "document.getElementById('chart').naturalWidth > 0", 60, "the report chart")
    assert tab.evaluate("document.getElementById('configs').textContent") == \
        "A: Lightning 4-step · B: AnimateDiff v2, 4 steps, cfg 7.5"
    tab.save_page_png(shots / "study_report.png", 1000)
    tab.close()

    # The report, against the clicks un-blinded here with the store's own rule (secret, rater, pair).
    secret = json.loads((folder / "manifest.json").read_text())["secret"]
    left = {pair: left_side(secret, "alice", pair) for pair in order}
    expected = {c: {"A": 0, "B": 0, "tie": 0} for c in CRITERIA}
    for rank, pair in enumerate(order):
        for c in CRITERIA:
            shown = choice_for(rank, CRITERIA.index(c))
            expected[c]["tie" if shown == "tie" else left[pair] if shown == "left" else
                        ("B" if left[pair] == "A" else "A")] += 1
    status, report, _ = rating.get(f"/api/{STUDY}/report.json")
    assert status == 200 and report["raters"] == 1 and report["votes"] == 18
    for c in CRITERIA:
        got = report["criteria"][c]
        assert {k: got[k]["count"] for k in ("A", "B", "tie")} == expected[c], c
    assert len((folder / "votes.jsonl").read_text().splitlines()) == 20, "every click logged, the last one counted"
    assert (folder / "report.svg").read_text().startswith("<svg") and (folder / "report.md").is_file()
    status, svg, headers = rating.get(f"/api/{STUDY}/report.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml") and b"Lightning 4-step" in svg
    status, answer, _ = rating.post(f"/api/{STUDY}/vote",
                                    {"rater": "alice", "pair": order[0], "criterion": "overall quality",
                                     "choice": "tie"})
    assert status == 409 and "closed" in answer["error"]
