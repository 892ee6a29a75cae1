"""Token chunking with overlap that respects headings and sentences.

A document is cut into sections at Markdown headings, sections into sentences; sentences are packed into
chunks of at most ``max_tokens`` tokens, and each chunk after the first in a section starts with the last
sentences of the previous one (at most ``overlap`` tokens). A sentence longer than a chunk is cut at token
boundaries. Chunks are spans of the original text (``text[start:end]``), so no character is lost or changed.
Tokens are words and punctuation marks (``\\w+|[^\\w\\s]``): close to what a WordPiece encoder counts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

TOKEN = re.compile(r"\w+|[^\w\s]")
HEADING = re.compile(r"^#{1,6}[ \t]+\S.*$", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n")


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    start: int  # character offsets into the document text
    end: int
    text: str
    tokens: int
    heading: str | None = None


def count_tokens(text: str) -> int:
    return sum(1 for _ in TOKEN.finditer(text))


def _sections(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, heading) spans, cut before each Markdown heading."""
    cuts = [m.start() for m in HEADING.finditer(text)]
    bounds = [0, *[c for c in cuts if c > 0], len(text)]
    out = []
    for a, b in itertools.pairwise(bounds):
        m = HEADING.match(text, a)
        out.append((a, b, m.group(0).lstrip("#").strip() if m else None))
    return out


def _units(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int, int]]:
    """Sentence spans (start, end, tokens) of ``text[start:end]``; a sentence over ``max_tokens`` is cut."""
    units: list[tuple[int, int, int]] = []
    pos = start
    for m in SENTENCE_END.finditer(text, start, end):
        if m.end() > pos:
            units.extend(_split_long(text, pos, m.end(), max_tokens))
            pos = m.end()
    if pos < end:
        units.extend(_split_long(text, pos, end, max_tokens))
    return [u for u in units if u[2] > 0 or text[u[0] : u[1]].strip()]


def _split_long(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int, int]]:
    spans = [(m.start(), m.end()) for m in TOKEN.finditer(text, start, end)]
    if len(spans) <= max_tokens:
        return [(start, end, len(spans))]
    out = []
    pos = start
    for i in range(max_tokens, len(spans), max_tokens):
        cut = spans[i][0]
        out.append((pos, cut, max_tokens))
        pos = cut
    out.append((pos, end, len(spans) - (len(spans) - 1) // max_tokens * max_tokens))
    return out


def chunk_text(text: str, max_tokens: int = 200, overlap: int = 40) -> list[Chunk]:
    """The chunks of ``text``. ``overlap`` must be smaller than ``max_tokens``."""
    if max_tokens < 1 or not 0 <= overlap < max_tokens:
        raise ValueError("chunking needs max_tokens >= 1 and 0 <= overlap < max_tokens")
    chunks: list[Chunk] = []
    for s_start, s_end, heading in _sections(text):
        units = _units(text, s_start, s_end, max_tokens)
        i = 0
        while i < len(units):
            j, total = i, 0
            while j < len(units) and (j == i or total + units[j][2] <= max_tokens):
                total += units[j][2]
                j += 1
            a, b = units[i][0], units[j - 1][1]
            body = text[a:b]
            if body.strip():
                chunks.append(Chunk(len(chunks), a, b, body, total, heading))
            if j >= len(units):
                break
            # Step back over the last sentences of this chunk (up to ``overlap`` tokens) so the next starts
            # with them; always advance by at least one sentence, and leave room for the next new one (else
            # the next chunk would repeat part of this one and add nothing).
            k, back, fresh = j, 0, units[j][2]
            while k - 1 > i and back + units[k - 1][2] <= min(overlap, max_tokens - fresh):
                k -= 1
                back += units[k][2]
            i = k
    return chunks
