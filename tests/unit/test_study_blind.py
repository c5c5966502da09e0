"""Blinding (study/blind.py): the workflow text ComfyUI writes into an MP4 is blanked without moving a byte; clip
tokens differ per rater and say nothing about A/B; left/right and pair order are keyed coins, independent across
raters and pairs, with no balance a made-up rater could exploit (the attack itself: test_study_server.py)."""
from __future__ import annotations

import io

import pytest

from adlightning.study.blind import NotMP4, clip_token, left_side, pair_order, rater_key, scrub_mp4
from tests.unit.study_fixtures import fake_mp4


def test_scrub_blanks_every_metadata_box_and_keeps_the_layout():
    data = fake_mp4()
    assert b"animatediff_lightning" in data and b"lightning track" in data
    clean, blanked = scrub_mp4(data)
    assert blanked == 2                                  # the movie's udta and the track's udta
    assert len(clean) == len(data)                       # same size: chunk offsets stay valid
    assert b"lightning" not in clean.lower()
    assert clean.count(b"udta") == 0 and clean.count(b"free") == 2
    assert clean.endswith(b"\x00\x01frame-data")         # the media data untouched
    assert scrub_mp4(clean) == (clean, 0)                # nothing left to blank


@pytest.mark.parametrize("data, message", [
    (b"GIF89a" + bytes(40), "not an MP4"),
    (b"", "not an MP4"),
    (b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00", "without a moov"),
    (b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00\x00\x00\x01\x00moov", "past the end"),
])
def test_scrub_refuses_what_is_not_an_mp4(data, message):
    with pytest.raises(NotMP4, match=message):
        scrub_mp4(data)


def test_scrub_keeps_a_real_comfyui_style_mp4_playable():
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    # As ComfyUI's Save Video writes it: custom tags kept by movflags use_metadata_tags.
    with av.open(buf, mode="w", format="mp4", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata["prompt"] = '{"5": {"inputs": {"model_name": "animatediff_lightning_4step_comfyui.safetensors"}}}'
        stream = out.add_stream("h264", rate=8)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 30 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = buf.getvalue()
    assert b"animatediff_lightning" in data
    clean, blanked = scrub_mp4(data)
    assert blanked >= 1 and b"animatediff_lightning" not in clean
    with av.open(io.BytesIO(clean)) as video:
        assert "prompt" not in video.metadata
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == 6 and abs(int(frames[5].mean()) - 150) <= 3


SECRET = "ab" * 32
OTHER = "cd" * 32
PAIRS = [f"p{i:03d}" for i in range(100)]


def test_clip_tokens_are_per_rater_stable_and_opaque():
    ann, bob = rater_key(SECRET, "ann"), rater_key(SECRET, "bob")
    tokens = {clip_token(SECRET, ann, p, s) for p in ("p000", "p001") for s in "AB"}
    assert len(tokens) == 4 and all(len(t) == 48 and set(t) <= set("0123456789abcdef") for t in tokens)
    assert clip_token(SECRET, ann, "p000", "A") == clip_token(SECRET, ann, "p000", "A")        # stable for ann
    assert clip_token(SECRET, bob, "p000", "A") not in tokens                                  # bob's differ
    assert clip_token(OTHER, ann, "p000", "A") != clip_token(SECRET, ann, "p000", "A")
    assert rater_key(OTHER, "ann") != ann and len(ann) == 16


def test_left_right_is_a_keyed_coin_per_rater_and_pair_without_balance():
    ann = {p: left_side(SECRET, "ann", p) for p in PAIRS}
    assert ann == {p: left_side(SECRET, "ann", p) for p in reversed(PAIRS)}       # reproducible, order-free
    bob = {p: left_side(SECRET, "bob", p) for p in PAIRS}
    assert 30 < sum(ann[p] != bob[p] for p in PAIRS) < 70                          # independent across raters
    assert 30 < sum(ann[p] != left_side(OTHER, "ann", p) for p in PAIRS) < 70     # and across secrets
    # No per-rater balance: over many raters the count of A-left pairs spreads like a fair coin's (binomial,
    # sd 1.58 for 10 pairs), it is not pinned at 5.
    counts = [sum(left_side(SECRET, f"r{i}", p) == "A" for p in PAIRS[:10]) for i in range(400)]
    mean = sum(counts) / len(counts)
    var = sum((c - mean) ** 2 for c in counts) / len(counts)
    assert 4.6 < mean < 5.4 and 1.8 < var < 3.3, (mean, var)
    for p in PAIRS[:10]:                                                            # each pair: A left for ~half
        assert 150 < sum(left_side(SECRET, f"r{i}", p) == "A" for i in range(400)) < 250


def test_pair_order_is_per_rater_and_keyed():
    assert sorted(pair_order(SECRET, "ann", PAIRS)) == PAIRS
    assert pair_order(SECRET, "ann", PAIRS) == pair_order(SECRET, "ann", list(reversed(PAIRS)))
    assert pair_order(SECRET, "ann", PAIRS) != pair_order(SECRET, "bob", PAIRS)
    assert pair_order(SECRET, "ann", PAIRS) != pair_order(OTHER, "ann", PAIRS)
