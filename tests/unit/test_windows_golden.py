"""samplers/windows.py against the golden layouts that js/lib/context_windows.js is also tested on, so the Context
Windows node's in-page preview shows exactly the windows the sampler will run."""
import json


from dev.node_defs import REPO

GOLDEN = json.loads((REPO / "tests" / "fixtures" / "context_windows_golden.json").read_text())


def windows_module():
    from adlightning.samplers import windows   # an ImportError here is a failure: the golden list guards this module
    return windows


def test_python_layouts_match_the_golden_list():
    win = windows_module()
    wrong = []
    for case in GOLDEN["cases"]:
        options = win.WindowOptions(length=case["length"], overlap=case["overlap"], schedule=case["schedule"])
        layouts = [win.windows(case["frames"], options, step) for step in range(len(case["windows"]))]
        if layouts != case["windows"]:
            wrong.append({k: case[k] for k in ("schedule", "frames", "length", "overlap")})
    assert not wrong, f"samplers/windows.py now differs from the golden list (and the JS port) for {wrong}"
    assert len(GOLDEN["cases"]) >= 40


def test_van_der_corput_matches():
    win = windows_module()
    assert [win.van_der_corput(n) for n in range(len(GOLDEN["van_der_corput"]))] == GOLDEN["van_der_corput"]
