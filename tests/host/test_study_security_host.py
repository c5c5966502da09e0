"""Host tier, the A/B study and the pack's HTTP routes as an attacker on the same network sees them (issue 20), on a
real ComfyUI with the pack installed:

- with no study started, ComfyUI has no study route and no memory route (the benchmark's is a harness-only node);
- a manifest naming /etc/passwd (absolute and ../ forms), planted through core's /upload/image (type output, a
  subfolder) and in the study folder itself, gets no file out of ComfyUI, the pack's app routes or the study server,
  whatever clip URL is asked for;
- a real 2-pair study (64 px, 1 step, two configurations through this ComfyUI) leaves nothing that tells the
  configurations apart anywhere a rater could look: every route of the study server, and core's /view, /history,
  /api/jobs, /queue, /userdata and /internal/files in case ComfyUI is reachable too (manifest, votes, file names,
  originals, history entries, byte lengths, file dates).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from dev.harness.models import LIGHTNING_NAME, V2_NAME
from dev.node_defs import REPO
from tests.host.study_serve import StudyServe, fetch

STUDY = "host2"
PASSWD = b"root:x:0:0"
CONFIGS = {
    "A": {"name": "Lightning one step", "workflow": "t2v_lightning",
          "overrides": {"motion_module": LIGHTNING_NAME, "steps": 1, "cfg": 1.0}},
    "B": {"name": "Version two at cfg 7.5", "workflow": "t2v_lightning",
          "overrides": {"motion_module": V2_NAME, "steps": 1, "cfg": 7.5}},
}


def upload(server, name: str, data: bytes, subfolder: str) -> int:
    """Core's /upload/image with type=output and a subfolder, as any client may call it (multipart form)."""
    boundary = uuid.uuid4().hex
    parts = []
    for field, value in (("type", "output"), ("subfolder", subfolder), ("overwrite", "true")):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    status, _, _ = fetch(server.url + "/upload/image", raw=b"".join(parts),
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return status


def hostile_manifest(study_id: str, secret: str, files: dict) -> dict:
    return {"format": 2, "id": study_id, "seed": 1, "secret": secret, "organiser_sha256": "0" * 64,
            "criteria": ["overall quality"], "configs": CONFIGS,
            "pairs": [{"id": "p000", "index": 0, "prompt": "x", "theme": "x", "seed": 1, "files": files}]}


SECRET = "ab" * 32
PLANTED = {"evil_abs": {"A": "/etc/passwd", "B": "/etc/passwd"},
           "evil_dotdot": {"A": "../../../../../../../../etc/passwd", "B": "../../../../../../../etc/passwd"}}


def no_passwd(answers) -> None:
    for status, body, _ in answers:
        text = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert PASSWD not in text, (status, text[:200])


def test_no_study_or_memory_route_on_comfyui(server):
    for path in ("/adlightning/study/", "/adlightning/study", "/adlightning/study/api/studies",
                 "/api/adlightning/study/", "/adlightning/memory", "/api/adlightning/memory"):
        assert fetch(server.url + path)[0] == 404, path
    assert fetch(server.url + "/adlightning/memory/reset", body={})[0] in (404, 405)
    assert fetch(server.url + "/adlightning/app/")[0] == 200          # the pack's own page is there


def test_planted_manifests_get_no_file_out(server, tmp_path):
    # 1. through core's upload, into ComfyUI's output folder (where studies used to live), closed.json too
    for study_id, files in PLANTED.items():
        sub = f"adlightning_study/{study_id}"
        assert upload(server, "manifest.json", json.dumps(hostile_manifest(study_id, SECRET, files)).encode(),
                      sub) == 200
        assert upload(server, "closed.json", b"{}", sub) == 200
        assert (server.output_dir / sub / "manifest.json").is_file()
    answers = []
    old_token = hmac.new(SECRET.encode(), b"p000|A", hashlib.sha256).hexdigest()[:24]   # the old route's token
    for study_id in PLANTED:
        for path in (f"/adlightning/study/clip/{study_id}/{old_token}", f"/api/adlightning/study/clip/{study_id}/"
                     f"{old_token}", f"/adlightning/study/api/{study_id}/session?rater=a",
                     f"/adlightning/study/api/{study_id}/configs"):
            answer = fetch(server.url + path)
            assert answer[0] == 404, path
            answers.append(answer)
    # the pack's app routes, with every spelling of a way out
    for path in ("/adlightning/app/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/adlightning/app/%2e%2e/%2e%2e/etc/passwd",
                 "/adlightning/app/workflows/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                 "/adlightning/app/workflows/%2Fetc%2Fpasswd", "/adlightning/app/..%5C..%5Cetc%5Cpasswd",
                 "/api/adlightning/app/workflows/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd"):
        answer = fetch(server.url + path)
        assert answer[0] in (400, 403, 404), (path, answer[0])
        answers.append(answer)
    # 2. in the study folder itself, next to a good study; and the organiser pointing the server at ComfyUI's own
    # folder of planted studies (a --base-directory ComfyUI cannot be recognised): every clip URL it hands out
    root = tmp_path / "studies"
    for study_id, files in PLANTED.items():
        (root / study_id / "clips").mkdir(parents=True)
        (root / study_id / "manifest.json").write_text(json.dumps(hostile_manifest(study_id, SECRET, files)))
    link = root / "evil_link"
    (link / "clips").mkdir(parents=True)
    clip = "clips/" + "0" * 32 + ".mp4"
    (link / clip).symlink_to("/etc/passwd")
    (link / "manifest.json").write_text(json.dumps(hostile_manifest("evil_link", SECRET, {"A": clip, "B": clip})))
    for folder in (root, server.output_dir / "adlightning_study"):
        with StudyServe(folder) as serve:
            status, studies, _ = serve.get("/api/studies")
            assert status == 200 and studies and all(s.get("error") for s in studies), studies
            for entry in studies:
                for rater in ("a", "b"):
                    answer = serve.get(f"/api/{entry['id']}/session?rater={rater}")
                    assert answer[0] == 409, answer
                    answers.append(answer)
                for token in ("0" * 48, old_token, "..%2F..%2F..%2Fetc%2Fpasswd"):
                    answers.append(serve.get(f"/clip/{entry['id']}/{token}"))
            for path in ("/..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"):
                answers.append(serve.get(path))
    no_passwd(answers)


# --- a real study ----------------------------------------------------------------------------------------------

def served_files(server) -> dict[str, int]:
    """Every file under the folders core serves (output, input, temp): relative path -> size."""
    out = {}
    for kind in ("output", "input", "temp"):
        folder = server.base / kind
        for path in folder.rglob("*") if folder.is_dir() else []:
            if path.is_file():
                out[f"{kind}/{path.relative_to(folder)}"] = path.stat().st_size
    return out


@pytest.fixture(scope="module")
def real_study(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    configs = tmp_path_factory.mktemp("configs") / "ab.json"
    configs.write_text(json.dumps(CONFIGS))
    before = served_files(server)
    listings = {kind: fetch(f"{server.url}/internal/files/{kind}")[1] for kind in ("output", "input", "temp")}
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "tools.study", "generate", "--id", STUDY, "--root", str(root),
                          "--comfy-output", str(server.output_dir), "--server", server.url, "--configs", str(configs),
                          "--prompts", "2", "--size", "64", "--frames", "8", "--seed", "11", "--timeout", "900"],
                         cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{server.log()[-3000:]}"
    print(f"2-pair study generated in {time.monotonic() - start:.0f}s")
    return {"folder": root / STUDY, "before": before, "listings": listings, "stdout": run.stdout}


def test_comfyui_keeps_nothing_of_the_study(server, real_study):
    folder = real_study["folder"]
    manifest = json.loads((folder / "manifest.json").read_text())
    prompts = [p["prompt"] for p in manifest["pairs"]]
    clips = {name: (folder / name).read_bytes() for p in manifest["pairs"] for name in p["files"].values()}
    # not one file more (or changed in size) in the folders core serves: no original, so no byte length to match
    # a clip against, no manifest, no votes
    after = served_files(server)
    assert after == real_study["before"], sorted(set(after.items()) ^ set(real_study["before"].items()))
    for kind in ("output", "input", "temp"):
        assert fetch(f"{server.url}/internal/files/{kind}")[1] == real_study["listings"][kind], kind
    # no history entry, job or queue item holds the study's prompts or models
    for path in ("/history", "/history?max_items=1000", "/queue", "/api/jobs", "/api/jobs?limit=1000"):
        status, body, _ = fetch(server.url + path)
        text = json.dumps(body) if not isinstance(body, bytes) else body.decode(errors="replace")
        assert not any(prompt in text for prompt in prompts) and V2_NAME not in text, path
    # nothing under the study's names through /view, whatever type and subfolder
    for name in [*clips, "manifest.json", "votes.jsonl"]:
        for kind in ("output", "input", "temp"):
            for sub in ("", "clips", f"adlightning_study/{STUDY}", f"adlightning_study/{STUDY}/clips", STUDY):
                query = urllib.parse.urlencode({"filename": Path(name).name, "subfolder": sub, "type": kind})
                status, body, _ = fetch(f"{server.url}/view?{query}")
                assert status != 200 or body not in clips.values(), (name, kind, sub)
    for path in ("/userdata?dir=.&recurse=true&full_info=true", "/v2/userdata", "/userdata?dir=workflows"):
        status, body, _ = fetch(server.url + path)
        text = json.dumps(body) if not isinstance(body, bytes) else body.decode(errors="replace")
        assert STUDY not in text and not any(Path(n).stem in text for n in clips), path


def test_nothing_the_study_server_answers_tells_the_configurations_apart(real_study):
    folder = real_study["folder"]
    manifest = json.loads((folder / "manifest.json").read_text())
    names = {n: (folder / n).read_bytes() for p in manifest["pairs"] for n in p["files"].values()}
    hidden = [manifest["secret"], manifest["organiser_sha256"], str(folder.parent), LIGHTNING_NAME, V2_NAME,
              "t2v_lightning", "overrides", *(c["name"] for c in CONFIGS.values()),
              *(Path(n).stem for n in names), *(n for n in names)]
    answers = []
    with StudyServe(folder.parent) as serve:
        assert serve.post(f"/api/{STUDY}/vote", {"rater": "ann", "pair": manifest["pairs"][0]["id"],
                                                 "criterion": "overall quality", "choice": "left"})[0] == 200
        for path in ("/", "/study.js", "/study_logic.js", "/study.css", "/api/studies", f"/api/{STUDY}/configs",
                     f"/api/{STUDY}/report.json", f"/api/{STUDY}/report.md", f"/api/{STUDY}/report.svg",
                     "/manifest.json", "/votes.jsonl", f"/{STUDY}/manifest.json", f"/api/{STUDY}/manifest.json",
                     f"/clips/{Path(next(iter(names))).name}", f"/clip/{STUDY}/{Path(next(iter(names))).stem}"):
            answers.append(serve.get(path))
        served = {}
        for rater in ("ann", "bob", "made-up-1", "made-up-2"):
            status, session, _ = serve.get(f"/api/{STUDY}/session?rater={rater}")
            assert status == 200
            answers.append((status, session, {}))
            for pair in session["pairs"]:
                for side in ("left", "right"):
                    status, data, headers = serve.get(f"/clip/{STUDY}/{pair[side]}")
                    assert status == 200 and data in names.values()
                    served[pair[side]] = data
                    assert "Last-Modified" not in headers and "ETag" not in headers
                    answers.append((status, b"", headers))
        answers.append(serve.post(f"/api/{STUDY}/close", {"organiser": STUDY}))
    assert not (folder / "closed.json").exists()
    assert len(served) == 4 * 2 * 2, "every rater has their own clip URLs"
    for data in served.values():                              # the clips themselves carry no workflow text
        assert LIGHTNING_NAME.encode() not in data and V2_NAME.encode() not in data
        assert b"t2v_lightning" not in data and b'"inputs"' not in data
    for status, body, headers in answers:
        text = (body if isinstance(body, bytes) else json.dumps(body).encode()).decode(errors="replace")
        text += json.dumps(dict(headers))
        for needle in hidden:
            assert needle not in text, (needle, status, text[:300])
    # the files' dates are one and the same: even the study folder does not order A before B
    assert {(folder / n).stat().st_mtime for n in names} == {946684800}
