"""Chunker properties: no text lost, chunks within the size, overlap as configured, headings respected,
unicode safe."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tollhouse.rag.chunker import chunk_text, count_tokens

WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)
SENTENCE = st.lists(WORDS, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + ".")
DOC = st.lists(
    st.one_of(SENTENCE, st.sampled_from(["\n\n", "\n# Title\n", "\n## Sub heading\n", "\n"])), max_size=60
).map("".join)


@settings(max_examples=200, deadline=None)
@given(DOC, st.integers(4, 80), st.data())
def test_no_text_lost_and_sizes_hold(text: str, max_tokens: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, max_tokens - 1))
    chunks = chunk_text(text, max_tokens, overlap)
    covered = bytearray(len(text))
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.tokens == count_tokens(c.text) <= max_tokens
        covered[c.start : c.end] = b"\1" * (c.end - c.start)
    lost = "".join(ch for ch, hit in zip(text, covered, strict=True) if not hit)
    assert lost.strip() == ""  # only whitespace between chunks may be left out
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start and b.end > a.end  # always moving forward
        if b.start < a.end:  # overlapping: by whole sentences, at most `overlap` tokens
            assert count_tokens(text[b.start : a.end]) <= overlap


def test_overlap_repeats_trailing_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    chunks = chunk_text(text, 24, 12)
    assert len(chunks) > 2
    for a, b in itertools.pairwise(chunks):
        shared = text[b.start : a.end]
        assert shared.strip() and 0 < count_tokens(shared) <= 12
        assert a.text.endswith(shared.rstrip()) or shared in a.text


def test_headings_start_chunks_and_are_kept() -> None:
    text = "# Leave\nYou get 25 days.\n\n## Carry over\nUp to 5 days carry over.\n# Travel\nTrains only."
    chunks = chunk_text(text, 100, 10)
    assert [c.heading for c in chunks] == ["Leave", "Carry over", "Travel"]
    assert [c.text.splitlines()[0] for c in chunks] == ["# Leave", "## Carry over", "# Travel"]


def test_a_sentence_longer_than_a_chunk_is_cut_at_token_boundaries() -> None:
    text = "word " * 250
    chunks = chunk_text(text, 100, 0)
    assert [c.tokens for c in chunks] == [100, 100, 50]
    assert "".join(c.text for c in chunks) == text.rstrip() or text.startswith(chunks[0].text)


def test_unicode_and_empty() -> None:
    assert chunk_text("", 10, 2) == []
    assert chunk_text("   \n\n  ", 10, 2) == []
    text = "Ünïcödé façade — naïve café. 東京は大きい。 Emoji 🎉 party! " * 5
    chunks = chunk_text(text, 12, 3)
    assert all(text[c.start : c.end] == c.text for c in chunks)
