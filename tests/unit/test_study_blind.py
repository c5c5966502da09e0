"""Blinding (study/blind.py): the workflow text ComfyUI writes into an MP4 is blanked without moving a byte; clip
tokens say nothing about A/B."""
from __future__ import annotations

import io

import pytest

from adlightning.study.blind import NotMP4, clip_token, scrub_mp4
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


def test_clip_tokens_are_stable_distinct_and_opaque():
    tokens = {clip_token("s3cret", p, s) for p in ("p000", "p001") for s in "AB"}
    assert len(tokens) == 4
    assert clip_token("s3cret", "p000", "A") == clip_token("s3cret", "p000", "A")
    assert clip_token("other", "p000", "A") != clip_token("s3cret", "p000", "A")
    assert all(len(t) == 24 and set(t) <= set("0123456789abcdef") for t in tokens)
