"""Keeping a study blind: what a rater can read from a clip or its URL must not name the configuration.

Two leaks are closed here:
- ComfyUI's Save Video writes the whole prompt and workflow (motion module file, steps, cfg) into the MP4 as
  container metadata (movflags use_metadata_tags -> moov/udta/meta/ilst). `scrub_mp4` turns every `udta` and `meta`
  box under `moov` (and its tracks) into a `free` box of the same size with zeroed contents: no offsets move, so the
  sample tables (stco) stay valid and the file plays as before, but the text is gone.
- Clip URLs: `clip_token` is an HMAC of (pair, side) under the study's secret, so a URL says nothing about A/B.
"""
from __future__ import annotations

import hashlib
import hmac
import struct

# Boxes whose children are boxes, on the way to the metadata (ISO 14496-12).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf"}
_METADATA = {b"udta", b"meta"}


class NotMP4(ValueError):
    pass


def _boxes(data: bytearray, start: int, end: int):
    """(type, header start, payload start, box end) of each box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:                               # 64-bit size follows the type
            if pos + 16 > end:
                raise NotMP4(f"box {kind!r} at byte {pos} is cut off")
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:                             # runs to the end of its parent
            size = end - pos
        if size < header or pos + size > end:
            raise NotMP4(f"box {kind!r} at byte {pos} claims {size} bytes, past the end of its parent")
        yield kind, pos, pos + header, pos + size
        pos += size


def scrub_mp4(data: bytes) -> tuple[bytes, int]:
    """The MP4 with its metadata boxes blanked, and how many were blanked. NotMP4 if data is not an MP4/MOV."""
    buf = bytearray(data)
    if len(buf) < 8 or bytes(buf[4:8]) not in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        raise NotMP4("not an MP4 file (no ftyp/moov box at the start)")
    top = list(_boxes(buf, 0, len(buf)))
    if not any(kind == b"moov" for kind, *_ in top):
        raise NotMP4("MP4 without a moov box (unfinished or fragmented file)")
    blanked = 0

    def walk(start: int, end: int) -> None:
        nonlocal blanked
        for kind, head, payload, box_end in list(_boxes(buf, start, end)):
            if kind in _METADATA:
                buf[head + 4:head + 8] = b"free"
                buf[payload:box_end] = bytes(box_end - payload)
                blanked += 1
            elif kind in _CONTAINERS:
                walk(payload, box_end)

    for kind, _, payload, box_end in top:
        if kind == b"moov":
            walk(payload, box_end)
    return bytes(buf), blanked


def clip_token(secret: str, pair: str, side: str) -> str:
    """An opaque, stable name for one clip of one pair: the same for every rater, unguessable without the secret."""
    return hmac.new(secret.encode(), f"{pair}|{side}".encode(), hashlib.sha256).hexdigest()[:24]
