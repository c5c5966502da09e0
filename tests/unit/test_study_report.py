"""The study report (study/report.py) against hand-computed values: ties, all indistinguishable, one rater, themes,
overall preference; its Markdown and SVG; the tools/study.py report and close commands."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from adlightning.study import report as rep
from adlightning.study.stats import CRITERIA, Vote
from adlightning.study.store import StudyStore
from tests.unit.study_fixtures import CONFIGS, make_study
from tools import study as cli

Q = "overall quality"


def manifest(n_pairs=10, themes=("sports", "nature")):
    return {"id": "s1", "configs": CONFIGS, "criteria": list(CRITERIA),
            "pairs": [{"id": f"p{i:03d}", "theme": themes[i % len(themes)]} for i in range(n_pairs)]}


def theme(i, themes=("sports", "nature")):
    return themes[i % len(themes)]


def one_rater_with_ties():
    """ann on overall quality over 10 pairs: A 6, B 2, indistinguishable 2."""
    choices = ["A"] * 6 + ["B"] * 2 + ["tie"] * 2
    return [Vote("ann", f"p{i:03d}", theme(i), Q, c) for i, c in enumerate(choices)]


def test_one_rater_with_ties_against_hand_computed_values():
    r = rep.build(manifest(), one_rater_with_ties())
    c = r["criteria"][Q]
    assert (r["raters"], r["votes"], c["votes"], c["decided"]) == (1, 10, 10, 8)
    assert [c[k]["count"] for k in ("A", "tie", "B")] == [6, 2, 2]
    assert [c[k]["share"] for k in ("A", "tie", "B")] == [0.6, 0.2, 0.2]
    # Wilson 6/10: centre (0.6 + z^2/20) / (1 + z^2/10), half-width z sqrt(0.024 + z^2/400) / (1 + z^2/10)
    assert (c["A"]["low"], c["A"]["high"]) == pytest.approx((0.3127, 0.8318), abs=5e-5)
    # Wilson 2/10 (the textbook 0.0567-0.5098)
    assert (c["B"]["low"], c["B"]["high"]) == pytest.approx((0.0567, 0.5098), abs=5e-5)
    # sign test over the 8 decided votes, 6 against 2: 2 * (1 + 8 + 28) / 256
    assert c["p"] == pytest.approx(74 / 256)
    # criteria nobody voted on are in the report, empty
    assert r["criteria"]["motion amplitude"]["votes"] == 0 and r["criteria"]["motion amplitude"]["p"] == 1.0
    # per theme: sports holds pairs 0,2,4,6,8 -> A A A B tie; nature 1,3,5,7,9 -> A A A B tie
    sports = r["themes"]["sports"][Q]
    assert [sports[k]["count"] for k in ("A", "tie", "B")] == [3, 1, 1]
    assert sports["p"] == pytest.approx(0.625)     # 3 against 1: 2 * (1 + 4) / 16


def test_all_indistinguishable():
    votes = [Vote(r, f"p{i:03d}", theme(i), c, "tie") for r in ("ann", "bob") for i in range(5) for c in CRITERIA]
    r = rep.build(manifest(5), votes)
    for c in r["criteria"].values():
        assert (c["votes"], c["decided"], c["p"]) == (10, 0, 1.0)
        assert c["tie"]["share"] == 1.0 and c["A"]["share"] == c["B"]["share"] == 0.0
        # 0 of 10: (0, z^2 / (10 + z^2)); 10 of 10: (10 / (10 + z^2), 1)
        assert (c["A"]["low"], c["A"]["high"]) == pytest.approx((0.0, 0.277533), abs=1e-5)
        assert (c["tie"]["low"], c["tie"]["high"]) == pytest.approx((0.722467, 1.0), abs=1e-5)
    overall = r["overall_preference"]
    assert (overall["A"]["count"], overall["B"]["count"], overall["tie"]["count"]) == (0, 0, 10)
    assert "no decided votes" in rep.markdown(r)


def test_overall_preference_is_one_verdict_per_rater_and_pair_and_second_votes_replace():
    votes = [Vote("ann", "p000", "sports", c, ch) for c, ch in zip(CRITERIA, ["A", "A", "B", "tie", "tie", "tie"])]
    votes += [Vote("ann", "p001", "nature", c, "tie") for c in CRITERIA]
    votes += [Vote("bob", "p000", "sports", CRITERIA[0], "A"), Vote("bob", "p000", "sports", CRITERIA[1], "B")]
    votes += [Vote("bob", "p001", "nature", Q, "A"), Vote("bob", "p001", "nature", Q, "B")]   # changed to B
    r = rep.build(manifest(2), votes)
    overall = r["overall_preference"]
    # ann p000: A by 2-1 -> A; ann p001: all tie -> tie; bob p000: 1-1 -> tie; bob p001: B (her second vote)
    assert [overall[k]["count"] for k in ("A", "tie", "B")] == [1, 2, 1]
    assert r["criteria"][Q]["B"]["count"] == 1 and r["criteria"][Q]["votes"] == 3
    assert r["themes"]["nature"]["overall preference"]["B"]["count"] == 1


def test_markdown_and_svg():
    r = rep.build(manifest(), one_rater_with_ties())
    md = rep.markdown(r)
    assert "**A** = Lightning 4-step · **B** = AnimateDiff v2 25 steps · 10 pairs · 1 rater(s) · 10 votes" in md
    assert f"| {Q} | 60% (31-83%) | 20% (6-51%) | 20% (6-51%) | 8 | 0.289 | no significant difference |" in md
    assert "| sports | overall quality | 60% (23-88%) |" in md
    svg = rep.svg(r)
    root = ET.fromstring(svg)                        # well-formed
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "p = 0.289 (n=8)" in texts and "60%" in texts and texts.count("no votes") == 5
    assert "A: Lightning 4-step" in texts and "B: AnimateDiff v2 25 steps" in texts
    strong = rep.build(manifest(), [Vote("ann", f"p{i:03d}", theme(i), Q, "B") for i in range(10)])
    assert "AnimateDiff v2 25 steps preferred" in rep.markdown(strong)
    assert 'font-weight="600">p = 0.002 (n=10)' in rep.svg(strong)   # 2 / 1024, shown bold
    tiny = rep.svg(rep.build(manifest(12), [Vote("ann", f"p{i:03d}", theme(i), Q, "A") for i in range(12)]))
    assert "p &lt; 0.001 (n=12)" in tiny and ET.fromstring(tiny) is not None   # 2 / 4096, escaped in the XML


def test_report_and_close_commands(tmp_path, capsys):
    folder = tmp_path / "s1"
    folder.mkdir()
    make_study(folder)
    store = StudyStore(folder)
    for i in range(4):
        store.record("ann", f"p{i:03d}", Q, "tie")
    assert cli.main(["report", str(folder)]) == 0
    report = json.loads((folder / "report.json").read_text())
    assert report["criteria"][Q]["tie"]["count"] == 4
    assert (folder / "report.md").read_text().startswith("# A/B study `s1`")
    assert (folder / "report.svg").read_text().startswith("<svg")
    capsys.readouterr()
    assert cli.main(["close", str(folder)]) == 0 and StudyStore(folder).closed["votes"] == 4
    assert "1 rater(s), 4 votes; A = Lightning 4-step, B = AnimateDiff v2 25 steps" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "none")]) == 2
    assert f"{tmp_path / 'none'}: no manifest.json" in capsys.readouterr().err


def test_configs_for_the_generator():
    default = cli.load_configs(None, {"size": "64", "frames": 8})
    assert default["A"]["overrides"] == {"motion_module": "animatediff_lightning_4step_comfyui.safetensors",
                                         "steps": 4, "cfg": 1.0, "size": "64", "frames": 8, "format": "mp4"}
    assert default["B"]["overrides"]["steps"] == 25 and default["B"]["overrides"]["cfg"] == 7.5
    assert cli.DEFAULT_CONFIGS["A"]["overrides"].get("size") is None      # the defaults are not changed


def test_bad_configs_are_refused(tmp_path, capsys):
    (tmp_path / "comfy-output").mkdir()
    path = tmp_path / "ab.json"
    path.write_text(json.dumps({"A": {"workflow": "t2v_lightning", "overrides": {"stepz": 4}},
                                "B": {"workflow": "t2v_lightning"}}))
    assert cli.main(["generate", "--configs", str(path), "--root", str(tmp_path / "studies"),
                     "--comfy-output", str(tmp_path / "comfy-output")]) == 2
    assert "config A has unknown override(s) ['stepz']" in capsys.readouterr().err
    path.write_text(json.dumps({"A": {"workflow": "nope"}, "B": {"workflow": "t2v_lightning"}}))
    assert cli.main(["generate", "--configs", str(path), "--root", str(tmp_path / "studies"),
                     "--comfy-output", str(tmp_path / "comfy-output")]) == 2
    assert "no workflow file 'nope'" in capsys.readouterr().err
    path.write_text(json.dumps({"A": {"workflow": "t2v_lightning"}}))
    assert cli.main(["generate", "--configs", str(path), "--root", str(tmp_path / "studies"),
                     "--comfy-output", str(tmp_path / "comfy-output")]) == 2
    assert "give {\"A\": config, \"B\": config}" in capsys.readouterr().err


def test_generate_needs_comfyuis_output_folder_and_a_root_outside_it(tmp_path, capsys):
    assert cli.main(["generate", "--root", str(tmp_path / "studies")]) == 2
    assert "--comfy-output" in capsys.readouterr().err
    output = tmp_path / "output"
    output.write_text("")
    assert cli.main(["generate", "--root", str(tmp_path / "studies"), "--comfy-output", str(output)]) == 2
    assert f"--comfy-output {output}: not a folder" in capsys.readouterr().err
    output.unlink()
    assert cli.main(["generate", "--root", str(output / "adlightning_study"), "--comfy-output", str(output)]) == 2
    assert "inside ComfyUI's output folder" in capsys.readouterr().err


def test_serve_prints_urls_that_work_and_refuses_a_folder_comfyui_serves(tmp_path, capsys):
    import subprocess
    import sys
    import urllib.request
    from dev.node_defs import REPO

    comfy = tmp_path / "ComfyUI"
    (comfy / "comfy").mkdir(parents=True)
    (comfy / "main.py").write_text("")
    (comfy / "folder_paths.py").write_text("")
    (comfy / "output" / "adlightning_study" / "s1").mkdir(parents=True)
    assert cli.main(["serve", str(comfy / "output" / "adlightning_study" / "s1")]) == 2
    assert "which ComfyUI serves" in capsys.readouterr().err

    folder = tmp_path / "studies" / "s1"
    folder.mkdir(parents=True)
    make_study(folder)
    proc = subprocess.Popen([sys.executable, "-m", "tools.study", "serve", str(folder.parent), "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0].startswith(f"serving 1 study(ies) from {folder.parent} on 127.0.0.1:"), lines
        rating = lines[2].split("raters open ")[1].strip()
        organiser = lines[3].split("organiser secret): ")[1].strip()
        assert rating.endswith("/?study=s1") and organiser == rating + "&organiser"
        with urllib.request.urlopen(rating, timeout=10) as r:
            assert r.status == 200 and b"<title>AnimateDiff-Lightning: A/B study</title>" in r.read()
        with urllib.request.urlopen(rating.split("?")[0] + "api/s1/session?rater=ann", timeout=10) as r:
            assert len(json.loads(r.read())["pairs"]) == 4
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
