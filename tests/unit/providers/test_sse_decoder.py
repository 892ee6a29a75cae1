"""The SSE decoder gives the same events however the bytes are split: whole events per read (its fast
path), arbitrary cuts, and one byte at a time."""

from __future__ import annotations

import random

from tollhouse.providers.sse import SSEDecoder


def _document(rng: random.Random) -> bytes:
    parts: list[bytes] = [b"data: first\n\n"]
    for i in range(rng.randrange(1, 12)):
        kind = rng.randrange(6)
        if kind == 0:
            parts.append(b'data: {"i":%d}\n\n' % i)
        elif kind == 1:
            parts.append(b'event: error\ndata: {"e":%d}\n\n' % i)
        elif kind == 2:
            parts.append(b": keep-alive\n\n")
        elif kind == 3:
            parts.append(b"data: line one\ndata: line two %d\n\n" % i)
        elif kind == 4:
            parts.append(b"data:%d\r\n\r\n" % i)
        else:
            parts.append(b"event: ping\n")  # an event whose data comes in the next part
            parts.append(b"data: after ping %d\n\n" % i)
    return b"".join(parts)


def _decode(pieces: list[bytes]) -> list[tuple[bytes, bytes]]:
    d = SSEDecoder()
    out: list[tuple[bytes, bytes]] = []
    for p in pieces:
        out += d.feed(p)
    return out + d.flush()


def test_the_same_events_however_the_bytes_are_split() -> None:
    rng = random.Random(7)
    fast_path_taken = 0
    for _ in range(300):
        doc = _document(rng)
        expected = _decode([doc[i : i + 1] for i in range(len(doc))])
        assert expected  # every document holds events
        cuts = sorted(rng.sample(range(1, len(doc)), k=min(len(doc) - 1, rng.randrange(0, 6))))
        pieces = [doc[a:b] for a, b in zip([0, *cuts], [*cuts, len(doc)], strict=True)]
        assert _decode(pieces) == expected
        events = [e + b"\n\n" for e in doc.split(b"\n\n") if e]  # whole events per read
        fast_path_taken += sum(e.startswith(b"data: ") for e in events)
        assert _decode(events) == expected
    assert fast_path_taken > 100


def test_an_event_name_read_before_its_data_is_kept() -> None:
    d = SSEDecoder()
    assert d.feed(b"event: error\n") == []
    assert d.feed(b"data: x\n\n") == [(b"error", b"x")]
    assert d.feed(b"data: y\n\n") == [(b"", b"y")]
