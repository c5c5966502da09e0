"""Host tier, real browser: the prompt-to-clip page the pack serves at /adlightning/app/ on ComfyUI's own server.

First a bare ComfyUI (no models) checks what a first start gives: the pack's model folders, the page's routes.

Headless Debian Chromium (dev/harness/chromium.py) opens the page, generates a 64 px clip and sees the progress bar move
and the clip play; a second tab (its own client id) queues another prompt while the first runs, and each tab gets
its own clip; a file the server does not have comes back as ComfyUI's error, shown in the page. ComfyUI's own page
keeps answering meanwhile, and the app's files are not loaded into it. With ADL_UPDATE_SCREENSHOTS=1 the page after
its run is saved as docs/screenshots/app_page.png (random-weight models: the clip is noise).

Skipped, with the reason, without COMFYUI_PATH (see conftest) or without /usr/bin/chromium.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dev.harness.chromium import CHROMIUM, Chromium, Tab, offline_browser
from dev.harness.comfy_server import ComfyServer
from dev.node_defs import REPO

PAGE = "/adlightning/app"
UPDATE = os.environ.get("ADL_UPDATE_SCREENSHOTS") == "1"

# Records every value the progress bar and its label take (the test's own probe, added to the page from outside).
RECORD_JS = """(() => { window.__seen = {progress: [], labels: []};
  const bar = document.getElementById('progress'), label = document.getElementById('label');
  // Observers, not animation frames: a tab in the background gets no frames, and the first tab is in the background.
  new MutationObserver(() => window.__seen.labels.push(label.textContent))
    .observe(label, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => window.__seen.progress.push(bar.value)).observe(bar, {attributes: true});
  return true; })()"""

PLAYING_JS = """(() => { const el = document.querySelector('#player img, #player video');
  if (!el) return false;
  return el.tagName === 'IMG' ? el.complete && el.naturalWidth > 0
                              : !el.paused && el.readyState >= 2 && el.currentTime > 0; })()"""


def open_page(tab: Chromium, server) -> None:
    tab.navigate(server.url + PAGE)   # redirected to PAGE + "/"
    tab.wait_for("document.getElementById('generate') && !document.getElementById('generate').disabled && "
                 "document.getElementById('motionModule').options.length > 0", 60, "the page to read the files")


def set_fields(tab: Chromium, **values) -> None:
    tab.evaluate(f"""(() => {{ for (const [id, v] of Object.entries({json.dumps(values)})) {{
        const el = document.getElementById(id);
        if (el.type === 'checkbox') el.checked = v; else el.value = v; }} return true; }})()""")


def generate(tab: Chromium, prompt: str, seed: int) -> None:
    set_fields(tab, prompt=prompt, size="64x64", frames="8", seed=str(seed), randomSeed=False, upscale=False, lora="")
    tab.evaluate(RECORD_JS)
    tab.evaluate("document.getElementById('generate').click(), true")


def wait_for_clip(tab: Chromium, server, timeout: float = 600) -> dict:
    # Chromium holds back a background tab's autoplaying <video> until the tab is shown, as a user would show it.
    tab.call("Page.bringToFront")
    tab.wait_for(f"({PLAYING_JS}) || !document.getElementById('error').hidden", timeout, "the clip to play")
    error = tab.evaluate("document.getElementById('error').hidden ? null : document.getElementById('error').textContent")
    assert error is None, f"{error}\n{server.log()[-3000:]}"
    return tab.evaluate("""(() => ({seen: window.__seen,
        player: document.querySelector('#player img, #player video').src,
        strip: [...document.querySelectorAll('#strip figure')].map(f => f.title)}))()""")


def comfy_page_answers(server) -> float:
    start = time.monotonic()
    with urllib.request.urlopen(server.url + "/", timeout=30) as r:
        assert r.status == 200 and b"<html" in r.read(2000).lower()
    return time.monotonic() - start


def test_first_start_creates_the_model_folders_and_serves_the_page():
    """A bare ComfyUI (no model folders of ours, no models: cheap to start) with the pack: after its first start the
    folders the pack registers exist, and the page and its workflows are served, also under ComfyUI's /api prefix."""
    if not os.environ.get("COMFYUI_PATH"):
        pytest.skip("COMFYUI_PATH is not set: host tier (real ComfyUI) not run. See README, 'Testing'.")
    with ComfyServer(os.environ["COMFYUI_PATH"], {}) as bare:
        for folder in ("animatediff_models", "animatediff_motion_lora"):
            assert (bare.base / "models" / folder).is_dir(), f"models/{folder} not created at start"
        with urllib.request.urlopen(bare.url + PAGE, timeout=30) as r:   # redirected to PAGE + "/"
            assert r.url.endswith(PAGE + "/") and b"app.js" in r.read()
        for prefix in ("", "/api"):
            with urllib.request.urlopen(f"{bare.url}{prefix}{PAGE}/workflows/t2v_lightning.json", timeout=30) as r:
                assert json.loads(r.read()) == json.loads(
                    (REPO / "workflows" / "api" / "t2v_lightning.json").read_text())
        with urllib.request.urlopen(bare.url + PAGE + "/app_logic.js", timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
        for missing in ("/workflows/..%2F..%2F__init__.py", "/package.json", "/workflows/nope.json"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(bare.url + PAGE + missing, timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium): browser check not run")
    with offline_browser(1000, 900) as br:
        yield br


def test_page_generates_clips_in_two_tabs_and_shows_errors(server, browser, tmp_path):
    extensions = server.get("/extensions")
    assert not [e for e in extensions if "app_logic" in e or e.endswith("/app.js")], \
        "the page's scripts must not load into ComfyUI's own page"

    open_page(browser, server)
    second = Tab(browser)
    try:
        open_page(second, server)
        generate(browser, "a red fox running through snow", 1)
        browser.wait_for("window.__seen.labels.some(l => /Lightning Sampler \\d\\/\\d/.test(l))", 600,
                         "sampler progress in the first tab")
        generate(second, "a lighthouse in a storm", 2)   # queued while the first tab's prompt runs
        assert comfy_page_answers(server) < 5, "ComfyUI's own page must keep answering while the app runs"
        first = wait_for_clip(browser, server)
        other = wait_for_clip(second, server)
    finally:
        second.close()

    for result in (first, other):
        progress = result["seen"]["progress"]
        assert any(0 < v < 1 for v in progress) and progress[-1] == 1, progress
        assert any(label.startswith("Lightning Sampler 4/4") for label in result["seen"]["labels"])
        assert "/view?filename=" in result["player"]
        assert len(result["strip"]) == 1, "each tab shows its own clips only"
    assert first["player"] != other["player"]
    assert first["strip"][0].startswith("a red fox") and other["strip"][0].startswith("a lighthouse")
    if UPDATE:
        browser.save_page_png(REPO / "docs" / "screenshots" / "app_page.png", 1100)
    else:
        browser.save_page_png(tmp_path / "app_page.png", 1100)

    # A file the server does not have (say, deleted after the page listed the files): ComfyUI's answer in the page.
    browser.evaluate("""(() => { const s = document.getElementById('motionModule');
        s.add(new Option('gone_4step.safetensors')); s.value = 'gone_4step.safetensors'; return true; })()""")
    browser.evaluate("document.getElementById('generate').click(), true")
    browser.wait_for("!document.getElementById('error').hidden", 60, "the error box")
    error = browser.evaluate("document.getElementById('error').textContent")
    assert error.splitlines()[0] == "ComfyUI rejected the workflow: Prompt outputs failed validation", error
    # The loader checks its file itself, so the answer says where motion modules go rather than core's "not in list".
    assert "node 5 (Load Motion Module), input 'model_name': " in error, error
    assert "'gone_4step.safetensors' is not in models/animatediff_models" in error, error
    assert not browser.evaluate("document.getElementById('generate').disabled"), "the page takes the next prompt"
    errors = [e for e in browser.console_errors() if PAGE in e]
    assert errors == []
