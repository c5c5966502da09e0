"""The study's rating server (study/server.py), the real aiohttp server on 127.0.0.1 in a thread, as a rater or a
stranger on the network would use it: it serves only the study's own clips (a manifest naming /etc/passwd, '..', a
link: refused, the other studies still listed), reveals nothing of A/B before the organiser closes (no response
names a configuration, a secret, a file or a path; clip URLs are per rater; raters made up by the dozen recover
nothing), takes writes only as same-origin JSON with bounded bodies, answers every bad input with a 400 naming the
field, survives a torn vote log, and loses none of 240 concurrent votes."""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import socket

import numpy as np
import pytest

from adlightning.study.blind import left_side
from adlightning.study.stats import CRITERIA
from adlightning.study.store import StudyStore
from tests.unit.study_fixtures import ORGANISER, RunningServer, make_study, side_of

Q = "overall quality"
PASSWD = b"root:"


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "studies"
    (root / "s1").mkdir(parents=True)
    make_study(root / "s1")
    return root


@pytest.fixture
def server(root):
    with RunningServer(root) as running:
        yield running


def vote(server, rater="ann", pair="p000", criterion=Q, choice="left", **headers):
    return server.request("/api/s1/vote", {"rater": rater, "pair": pair, "criterion": criterion, "choice": choice},
                          headers=headers)


def test_the_page_the_list_a_session_a_clip(server, root):
    status, page, headers = server.request("/")
    assert status == 200 and page.startswith(b"<!doctype html>") and headers["X-Frame-Options"] == "DENY"
    for name in ("study.js", "study_logic.js", "study.css"):
        assert server.request(f"/{name}")[0] == 200
    assert server.request("/api/studies")[1] == [{"id": "s1", "pairs": 4, "raters": 0, "closed": False}]
    status, session, _ = server.request("/api/s1/session?rater=ann")
    assert status == 200 and [p["pair"] for p in session["pairs"]] and session["criteria"] == list(CRITERIA)
    status, clip, headers = server.request(f"/clip/s1/{session['pairs'][0]['left']}")
    assert status == 200 and clip[4:8] == b"ftyp" and headers["Content-Type"] == "video/mp4"
    # no file dates: the clips' times would order them (A made before B)
    assert "Last-Modified" not in headers and "ETag" not in headers and headers["Cache-Control"] == "no-store"
    status, part, headers = server.request(f"/clip/s1/{session['pairs'][0]['left']}", headers={"Range": "bytes=4-7"})
    assert status == 206 and part == b"ftyp" and headers["Content-Range"] == f"bytes 4-7/{len(clip)}"
    status, tail, _ = server.request(f"/clip/s1/{session['pairs'][0]['left']}", headers={"Range": "bytes=-5"})
    assert status == 206 and tail == clip[-5:]
    status, _, headers = server.request(f"/clip/s1/{session['pairs'][0]['left']}",
                                        headers={"Range": f"bytes={len(clip)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(clip)}"
    for path, code in [("/api/nope/session?rater=x", 404), ("/clip/s1/" + "0" * 48, 404), ("/clip/s1/p000_A", 404),
                       ("/nope.js", 404), ("/api/s1/configs", 403), ("/api/s1/report.json", 403),
                       ("/api/s1/session?rater=", 400)]:
        status, answer, _ = server.request(path)
        assert status == code and isinstance(answer, dict) and answer["error"], (path, status, answer)


def test_a_single_study_folder_can_be_served_alone(root):
    with RunningServer(root / "s1") as server:
        assert [s["id"] for s in server.request("/api/studies")[1]] == ["s1"]
        assert server.request("/api/s1/session?rater=ann")[0] == 200


# --- nothing outside the study folder ----------------------------------------------------------------------------

def plant(root, study_id, tamper):
    """A study folder made like any other, then tampered with (as anyone who can write there could)."""
    folder = root / study_id
    folder.mkdir()
    manifest = make_study(folder)
    tamper(folder, manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_planted_manifests_never_serve_a_file_outside_the_study(root, tmp_path):
    def absolute(folder, manifest):
        manifest["pairs"][0]["files"]["A"] = "/etc/passwd"

    def dotdot(folder, manifest):
        manifest["pairs"][0]["files"]["B"] = "../../../../../../../../etc/passwd"

    def inside_dotdot(folder, manifest):
        manifest["pairs"][1]["files"]["A"] = "clips/../../../../../../etc/passwd"

    def link(folder, manifest):
        name = manifest["pairs"][0]["files"]["A"]
        (folder / name).unlink()
        (folder / name).symlink_to("/etc/passwd")

    def linked_clips(folder, manifest):
        (folder / "clips").rename(folder / "real")
        (folder / "clips").symlink_to("/etc")

    def not_json(folder, manifest):
        manifest.clear()

    def format_one(folder, manifest):
        manifest["format"] = 1

    for name, tamper in [("absolute", absolute), ("dotdot", dotdot), ("inside_dotdot", inside_dotdot),
                         ("link", link), ("linked_clips", linked_clips), ("empty", not_json),
                         ("format_one", format_one)]:
        plant(root, name, tamper)
    (root / "junk").mkdir()
    (root / "junk" / "manifest.json").write_bytes(b"\xff[[[[")
    (root / "outside").symlink_to(root / "s1")          # a study folder that is a link is not followed
    with RunningServer(root) as server:
        status, studies, _ = server.request("/api/studies")
        assert status == 200
        listed = {s["id"]: s for s in studies}
        assert listed["s1"] == {"id": "s1", "pairs": 4, "raters": 0, "closed": False}     # the good one still there
        assert "outside" not in listed
        for broken in ("absolute", "dotdot", "inside_dotdot", "link", "linked_clips", "empty", "format_one", "junk"):
            assert listed[broken]["error"], broken                                         # one broken entry each
        assert "files.A must be clips/" in listed["absolute"]["error"]
        bodies = [json.dumps(studies).encode()]
        # every clip URL the server hands out, to any rater of any study, and URLs made up
        for study_id in listed:
            for rater in ("ann", "bob", "x" * 64):
                status, session, _ = server.request(f"/api/{study_id}/session?rater={rater}")
                bodies.append(json.dumps(session).encode())
                if status == 200:
                    for pair in session["pairs"]:
                        for side in ("left", "right"):
                            bodies.append(server.request(f"/clip/{study_id}/{pair[side]}")[1])
                else:
                    assert study_id != "s1" and status in (404, 409), (study_id, status, session)
            for token in ("0" * 48, "../../../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"):
                bodies.append(server.request(f"/clip/{study_id}/{token}")[1])
        for path in ("/..%2F..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd",
                     "/clip/..%2F..%2Fetc/passwd", "/api/..%2F..%2Fetc/session?rater=a", "/etc/passwd",
                     "/api/outside/session?rater=a", "/clip/outside/" + "0" * 48):
            bodies.append(server.request(path)[1])
    for body in bodies:
        text = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert PASSWD not in text and str(tmp_path).encode() not in text


# --- the blind -----------------------------------------------------------------------------------------------------

def test_nothing_a_rater_reaches_reveals_a_or_b_before_closing(server, root):
    manifest = json.loads((root / "s1" / "manifest.json").read_text())
    secrets_ = [manifest["secret"], manifest["organiser_sha256"], ORGANISER, str(root)]
    names = [c[k] for c in manifest["configs"].values() for k in ("name", "workflow")] + ["steps", "overrides"]
    files = [f for p in manifest["pairs"] for f in p["files"].values()]
    seen = []
    for rater in ("ann", "bob"):
        status, session, _ = server.request(f"/api/s1/session?rater={rater}")
        seen.append(session)
        for pair in session["pairs"]:
            seen.append(vote(server, rater, pair["pair"], Q, "left")[1])
    seen += [server.request(path)[1] for path in ("/api/studies", "/api/s1/session?rater=ann", "/api/s1/configs",
                                                  "/api/s1/report.md", "/api/s1/report.svg", "/")]
    seen.append(server.request("/api/s1/close", {"organiser": "s1"})[1])
    text = json.dumps([s if not isinstance(s, bytes) else s.decode() for s in seen])
    for needle in secrets_ + names + files + [f.split("/")[1] for f in files] + ['"A"', '"B"']:
        assert needle not in text, needle
    tokens = [{p[side] for p in s["pairs"] for side in ("left", "right")} for s in seen[:1] + seen[5:6]]
    assert tokens[0].isdisjoint(tokens[1]), "clip URLs are per rater"


def old_balanced_left(secret, rater, pairs):
    """The layout before this design (for the positive control): A on the left in exactly half of a rater's pairs."""
    ranked = sorted(pairs, key=lambda p: (hashlib.sha256(f"{secret}|{rater}|{p}".encode()).digest(), p))
    return {p: "A" if i % 2 == 0 else "B" for i, p in enumerate(ranked)}


def balance_attack(left_clip: list[dict], clips: dict) -> dict:
    """The attack of made-up raters: each sees, for each pair, which of its two clips (told apart by their bytes) is
    on the left. Guess which clip of each pair is A by the labelling under which every rater's count of A-left pairs
    is as close to half as it can be (exact under a balanced layout). {pair: the clip guessed to be A}."""
    pairs = sorted(clips)
    x_left = np.array([[row[p] == clips[p][0] for p in pairs] for row in left_clip], dtype=float)   # raters x pairs
    labellings = np.array(list(itertools.product((1.0, 0.0), repeat=len(pairs))))                 # 1: clip 0 is A
    a_left = labellings @ x_left.T + (1 - labellings) @ (1 - x_left).T
    best = labellings[np.argmin(((a_left - len(pairs) / 2) ** 2).sum(axis=1))]
    return {p: clips[p][0] if best[i] else clips[p][1] for i, p in enumerate(pairs)}


def recovered(guess: dict, truth: dict) -> int:
    """Pairs whose A the attack found, allowing it one global flip (knowing a single pair by eye gives the rest)."""
    right = sum(guess[p] == truth[p] for p in truth)
    return max(right, len(truth) - right)


RATERS = [f"made-up-{i}" for i in range(40)]


def test_forty_made_up_raters_recover_no_more_than_chance_through_the_server(tmp_path):
    """The attack over HTTP on a 10-pair study: sessions of 40 invented names, every clip fetched and told apart by
    its bytes. The bytes do match across raters (the attacker can follow a clip), but the side it is on is a keyed
    coin, so the balance attack finds no partition (under the old balanced layout it found all 10 pairs)."""
    folder = tmp_path / "s1"
    folder.mkdir()
    manifest = make_study(folder, n_pairs=10)
    manifest["secret"] = "5e" * 32                       # fixed, so this single run is reproducible
    (folder / "manifest.json").write_text(json.dumps(manifest))
    truth = {p["id"]: p["files"]["A"] for p in manifest["pairs"]}
    clips, left_clip, tokens = {}, [], set()
    with RunningServer(folder) as server:
        for rater in RATERS:
            session = server.request(f"/api/s1/session?rater={rater}")[1]
            row = {}
            for pair in session["pairs"]:
                left, right = (server.request(f"/clip/s1/{pair[s]}")[1] for s in ("left", "right"))
                tokens |= {pair["left"], pair["right"]}
                ids = {side_of(manifest, data): hashlib.sha256(data).hexdigest() for data in (left, right)}
                clips[pair["pair"]] = sorted(ids.values())
                row[pair["pair"]] = hashlib.sha256(left).hexdigest()
            left_clip.append(row)
    assert len(tokens) == 40 * 20, "no clip URL is shared by two made-up raters"
    by_hash = {p: {hashlib.sha256((folder / f).read_bytes()).hexdigest(): f for f in
                   (q["files"]["A"], q["files"]["B"])} for p, q in ((q["id"], q) for q in manifest["pairs"])}
    guess = {p: by_hash[p][h] for p, h in balance_attack(left_clip, clips).items()}
    print(f"made-up raters over HTTP: {recovered(guess, truth)} of 10 pairs recovered")
    assert recovered(guess, truth) < 10, "the made-up raters found which clip is A"


def test_the_balance_attack_is_at_chance_over_many_studies(tmp_path):
    """The same attack at store level over 40 studies (10 pairs, 40 made-up raters each): against the keyed coin it
    recovers about as many pairs as guessing does (6.2 of 10 on average, counting a global flip), against the old
    balanced layout all 10 every time."""
    folder = tmp_path / "s1"
    folder.mkdir()
    manifest = make_study(folder, n_pairs=10)
    keyed, balanced = [], []
    for study in range(40):
        secret = hashlib.sha256(f"study {study}".encode()).hexdigest()
        manifest["secret"] = secret
        (folder / "manifest.json").write_text(json.dumps(manifest))
        store = StudyStore(folder)
        truth = {p["id"]: p["files"]["A"] for p in manifest["pairs"]}
        clips = {p["id"]: sorted(p["files"].values()) for p in manifest["pairs"]}
        sessions = [store.session(r) for r in RATERS]
        seen = [{p["pair"]: store.clip_name(p["left"]) for p in s["pairs"]} for s in sessions]
        keyed.append(recovered(balance_attack(seen, clips), truth))
        assert all(seen[i][p] == manifest["pairs"][int(p[1:])]["files"][left_side(secret, r, p)]
                   for i, r in enumerate(RATERS) for p in seen[i])
        old = [{p: truth[p] if side == "A" else next(c for c in clips[p] if c != truth[p])
                for p, side in old_balanced_left(secret, r, list(truth)).items()} for r in RATERS]
        balanced.append(recovered(balance_attack(old, clips), truth))
    print(f"balance attack, 40 studies x 40 made-up raters x 10 pairs: keyed layout {np.mean(keyed):.2f} pairs "
          f"recovered on average (chance 6.23), old balanced layout {np.mean(balanced):.2f}")
    assert balanced == [10] * 40, balanced          # the attack works on the old layout ...
    chance = sum(max(k, 10 - k) * math.comb(10, k) for k in range(11)) / 1024     # 6.23
    assert abs(np.mean(keyed) - chance) < 0.6, (np.mean(keyed), keyed)              # ... and is chance on this one
    assert keyed.count(10) <= 2


# --- writes ------------------------------------------------------------------------------------------------------

def test_closing_needs_the_organiser_secret_not_the_public_id(server, root):
    vote(server)
    for body in ({"organiser": "s1"}, {"confirm": "s1"}, {"organiser": ""}, {}):
        status, answer, _ = server.request("/api/s1/close", body)
        assert status in (400, 403) and not (root / "s1" / "closed.json").exists(), (body, status, answer)
    status, answer, _ = server.request("/api/s1/close", {"organiser": "s1"})
    assert status == 403 and answer["error"].startswith("organiser:")
    status, answer, _ = server.request("/api/s1/close", {"organiser": ORGANISER})
    assert status == 200 and answer["configs"]["A"]["name"] == "Lightning 4-step" and answer["votes"] == 1
    assert server.request("/api/s1/configs")[1]["B"]["name"] == "AnimateDiff v2 25 steps"
    status, svg, headers = server.request("/api/s1/report.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml") and b"Lightning 4-step" in svg
    assert server.request("/api/s1/report.json")[1]["votes"] == 1
    status, answer, _ = vote(server, choice="tie")
    assert status == 409 and "closed" in answer["error"]


@pytest.mark.parametrize("headers, status, field", [
    ({"Content-Type": "text/plain"}, 415, "Content-Type"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "Content-Type"),
    ({"Origin": "null"}, 403, "Origin"),
    ({"Origin": "http://evil.example"}, 403, "Origin"),
    ({"Origin": "http://127.0.0.1:1"}, 403, "Origin"),
    ({"Origin": "file://"}, 403, "Origin"),
    ({"Host": "evil.example"}, 403, "host"),
    ({"Host": "evil.example", "Origin": "http://evil.example"}, 403, "host"),      # DNS rebinding
    ({"Content-Type": "application/json; charset=bogus"}, 400, "Content-Type"),
    ({"Content-Type": "application/json; charset=latin-1"}, 400, "Content-Type"),
])
def test_cross_site_and_non_json_writes_are_refused(server, root, headers, status, field):
    for path, body in (("/api/s1/vote", {"rater": "ann", "pair": "p000", "criterion": Q, "choice": "left"}),
                       ("/api/s1/close", {"organiser": ORGANISER})):
        got, answer, _ = server.request(path, raw=json.dumps(body).encode(), headers=headers)
        assert got == status and answer["error"].startswith(field), (path, got, answer)
    assert not (root / "s1" / "votes.jsonl").exists() and not (root / "s1" / "closed.json").exists()


def test_same_origin_and_non_browser_writes_are_taken(server, root):
    assert vote(server, Origin=server.url)[0] == 200
    assert vote(server, rater="bob")[0] == 200                                      # no Origin: curl, scripts
    assert vote(server, rater="cy", Host=f"localhost:{server.port}", Origin=f"http://localhost:{server.port}")[0] == 200
    assert len((root / "s1" / "votes.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("raw, field", [
    (b'{"rater": "ann", "pair": ["p000"], "criterion": "overall quality", "choice": "left"}', "pair"),
    (b'{"rater": "ann", "pair": {"p": 1}, "criterion": "overall quality", "choice": "left"}', "pair"),
    (b'{"rater": "ann", "pair": 0, "criterion": "overall quality", "choice": "left"}', "pair"),
    (b'{"rater": "a\\ud800", "pair": "p000", "criterion": "overall quality", "choice": "left"}', "rater"),
    (b'{"rater": ["ann"], "pair": "p000", "criterion": "overall quality", "choice": "left"}', "rater"),
    (b'{"rater": "ann", "pair": "p000", "criterion": 7, "choice": "left"}', "criterion"),
    (b'{"rater": "ann", "pair": "p000", "criterion": "overall quality", "choice": null}', "choice"),
    (b'{"rater": "ann", "pair": "p000", "criterion": "overall quality", "choice": "left", "side": "A"}', "side"),
    (b'{"pair": "p000", "criterion": "overall quality", "choice": "left"}', "rater"),
    (b"[" * 2000 + b"]" * 2000, "body"),
    (b'{"rater": ' + b"[" * 1500 + b"]" * 1500 + b"}", "body"),
    (b"\xff\xfe{}", "body"),
    (b"{not json", "body"),
    (b"", "body"),
    (b'["ann", "p000"]', "body"),
    (b"NaN", "body"),
])
def test_each_malformed_vote_is_a_400_naming_the_field(server, root, raw, field):
    status, answer, _ = server.request("/api/s1/vote", raw=raw)
    assert status == 400 and answer["error"].startswith(field), answer
    assert not (root / "s1" / "votes.jsonl").exists()
    assert server.request("/api/studies")[0] == 200


def test_bodies_are_bounded_before_they_are_read(server, root):
    status, answer, _ = server.request("/api/s1/vote", raw=b"[" * 100_000 + b"]" * 100_000)   # 100k deep
    assert status == 413 and answer["error"].startswith("body")
    big = json.dumps({"rater": "ann", "pair": "p000", "criterion": Q, "choice": "left", "x": "y" * 10_000}).encode()
    assert server.request("/api/s1/vote", raw=big)[0] == 413
    # a 50 MB body announced: refused from the headers, without waiting for (or reading) the body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST /api/s1/vote HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json"
                  f"\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n{{".encode())
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413") and b"body" in answer
    assert not (root / "s1" / "votes.jsonl").exists()


def test_a_torn_vote_log_still_serves_the_study_and_the_next_vote_repairs_it(server, root):
    assert vote(server)[0] == 200
    with open(root / "s1" / "votes.jsonl", "a") as f:
        f.write('{"rater": "ann", "pair": "p0')                       # the server killed mid-write
    with RunningServer(root) as restarted:                              # a new server process reads it
        server.stop()                                                   # (one server per study at a time)
        assert restarted.request("/api/studies")[1][0]["raters"] == 1
        session = restarted.request("/api/s1/session?rater=ann")[1]
        assert sum(len(p["votes"]) for p in session["pairs"]) == 1
        assert vote(restarted, pair="p001")[0] == 200
        assert restarted.request("/api/s1/close", {"organiser": ORGANISER})[0] == 200
    lines = (root / "s1" / "votes.jsonl").read_text().split("\n")
    assert len(lines) == 3 and lines[-1] == "" and [json.loads(line)["pair"] for line in lines[:2]] == ["p000",
                                                                                                        "p001"]


def test_two_servers_cannot_serve_one_study(server, root):
    assert server.request("/api/studies")[0] == 200                    # the first server holds the study
    with RunningServer(root) as second:
        status, answer, _ = second.request("/api/s1/session?rater=ann")
        assert status == 409 and "another rating server" in answer["error"]


def test_240_concurrent_votes_lose_none(tmp_path):
    import aiohttp

    folder = tmp_path / "s1"
    folder.mkdir()
    make_study(folder, n_pairs=10)
    votes = [(f"rater{r}", f"p{p:03d}", c, ("left", "right", "tie")[(r + p) % 3])
             for r in range(4) for p in range(10) for c in CRITERIA]
    assert len(votes) == 240

    async def cast(url):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(rater, pair, criterion, choice):
                async with session.post(f"{url}/api/s1/vote", json={"rater": rater, "pair": pair,
                                                                     "criterion": criterion, "choice": choice}) as r:
                    return r.status
            return await asyncio.gather(*(one(*v) for v in votes))

    with RunningServer(folder) as server:
        statuses = asyncio.run(cast(server.url))
    assert statuses == [200] * 240
    store = StudyStore(folder)
    assert len((folder / "votes.jsonl").read_text().splitlines()) == 240 and len(store.votes()) == 240
    secret = json.loads((folder / "manifest.json").read_text())["secret"]
    for rater, pair, criterion, choice in votes:
        session_votes = {p["pair"]: p["votes"] for p in store.session(rater)["pairs"]}
        assert session_votes[pair][criterion] == choice
        assert left_side(secret, rater, pair) in "AB"


def test_no_error_carries_a_path_of_the_machine(root, tmp_path):
    folder = root / "s1"
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / manifest["pairs"][0]["files"]["A"]).unlink()               # a broken study: messages about files
    with RunningServer(root) as server:
        answers = [server.request(p)[1] for p in ("/api/studies", "/api/s1/session?rater=a", "/nope",
                                                  "/api/s1/configs", "/clip/s1/" + "1" * 48)]
        answers.append(vote(server)[1])
    text = json.dumps(answers)
    assert "is missing" in text and str(tmp_path) not in text and "/tmp" not in text
