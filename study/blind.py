"""Keeping a study blind: nothing a rater can read from a clip, its URL or the page may tell A from B.

- ComfyUI's Save Video writes the whole prompt and workflow (motion module file, steps, cfg) into the MP4 as
  container metadata (movflags use_metadata_tags -> moov/udta/meta/ilst). `scrub_mp4` turns every `udta` and `meta`
  box under `moov` (and its tracks) into a `free` box of the same size with zeroed contents: no offsets move, so the
  sample tables (stco) stay valid and the file plays as before, but the text is gone.
- Which clip of a pair a rater sees on the left, and the order of the pairs, come from an HMAC under the study's
  secret of (rater, pair): reproducible by the server, independent across raters and pairs, and not computable by
  anyone without the secret. Each is an independent coin per rater and pair, with no balance: a rule such as "A on
  the left in exactly half of each rater's pairs" ties the pairs together, and raters made up in numbers can solve
  for A from it.
- Clip URLs are per rater: `clip_token` is the rater's key (an HMAC of the name) and an HMAC of (rater key, pair,
  side), so the same clip has a different URL for every rater and a URL says nothing about A/B.
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


RATER_KEY_HEX = 16
CLIP_MAC_HEX = 32


def _mac(secret: str, *parts: str) -> bytes:
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).digest()


def rater_key(secret: str, rater: str) -> str:
    """A rater's opaque id in clip URLs (not their name)."""
    return _mac(secret, "rater", rater).hex()[:RATER_KEY_HEX]


def clip_token(secret: str, key: str, pair: str, side: str) -> str:
    """The URL name of one clip for one rater: their key, then a MAC of (key, pair, side). Unguessable without the
    secret, different for every rater, stable for one."""
    return key + _mac(secret, "clip", key, pair, side).hex()[:CLIP_MAC_HEX]


def left_side(secret: str, rater: str, pair: str) -> str:
    """The configuration (A or B) a rater sees on the left for a pair: one keyed coin per (rater, pair)."""
    return "A" if _mac(secret, "left", rater, pair)[0] & 1 == 0 else "B"


def pair_order(secret: str, rater: str, pairs) -> list[str]:
    """The order a rater sees the pairs in (keyed, per rater, so no pair is always rated first, tired or fresh)."""
    return sorted(pairs, key=lambda p: (_mac(secret, "order", rater, p), p))
