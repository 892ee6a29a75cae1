"""The in-process vector index: exact search, HNSW past the size threshold, expiry, bounds, replacement."""

from __future__ import annotations

import itertools
import time

import numpy as np
import numpy.typing as npt
import pytest

from tollhouse.caching import vectors
from tollhouse.caching.vectors import VectorIndex
from tollhouse.embeddings.encoder import SentenceEncoder

F32 = npt.NDArray[np.float32]
VERBS = ["reset", "change", "recover", "delete", "update", "share"]
NOUNS = ["password", "account", "email address", "profile photo", "phone number", "billing plan"]
PLACES = ["on the website", "in the mobile app", "from my laptop", "at work", "without a phone", "today"]


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return [f"How do I {v} my {n} {p}?" for v, n, p in itertools.product(VERBS, NOUNS, PLACES)]


@pytest.fixture(scope="module")
def embedded(sentences: list[str]) -> F32:
    return SentenceEncoder().encode(sentences)


def later() -> float:
    return time.time() + 3600


def test_exact_search_ranks_by_cosine(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384)
    idx.add_many(
        ("s", v, t, f"k{i}", later()) for i, (v, t) in enumerate(zip(embedded, sentences, strict=True))
    )
    assert len(idx) == len(sentences) == idx.size("s")
    found = idx.search("s", embedded[7], min_similarity=0.5, k=5)
    assert found[0].entry_key == "k7"
    assert found[0].similarity == pytest.approx(1.0, abs=1e-5)
    sims = [c.similarity for c in found]
    assert sims == sorted(sims, reverse=True)
    assert len(found) == 5
    truth = np.sort(embedded @ embedded[7])[::-1][:5]
    np.testing.assert_allclose(sims, truth, atol=1e-5)


def test_min_similarity_filters_and_scopes_are_separate(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384)
    idx.add("a", embedded[0], sentences[0], "k0", later())
    assert idx.search("a", embedded[0], min_similarity=0.99)[0].entry_key == "k0"
    assert idx.search("b", embedded[0], min_similarity=0.0) == []
    far = int(np.argmin(embedded @ embedded[0]))
    assert idx.search("a", embedded[far], min_similarity=float(embedded[far] @ embedded[0]) + 0.01) == []


def test_expired_entries_never_match_and_are_purged(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384)
    idx.add("s", embedded[0], sentences[0], "gone", time.time() - 1)  # already expired: not indexed
    assert len(idx) == 0
    idx.add("s", embedded[1], sentences[1], "soon", time.time() + 0.2)
    assert idx.search("s", embedded[1], min_similarity=0.9)
    time.sleep(0.25)
    assert idx.search("s", embedded[1], min_similarity=0.9) == []
    assert idx.purge() == 1
    assert len(idx) == 0


def test_max_entries_evicts_the_oldest_across_scopes(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384, max_entries=10)
    for i in range(25):
        idx.add(f"scope{i % 3}", embedded[i], sentences[i], f"k{i}", later())
    assert len(idx) == 10
    kept = {c.entry_key for s in ("scope0", "scope1", "scope2") for c in _all(idx, s, embedded[:25])}
    assert kept == {f"k{i}" for i in range(15, 25)}


def _all(idx: VectorIndex, scope: str, queries: F32) -> list[vectors.Candidate]:
    return [c for q in queries for c in idx.search(scope, q, min_similarity=0.999, k=1)]


def test_same_key_or_text_replaces(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384)
    idx.add("s", embedded[0], sentences[0], "k", later())
    idx.add("s", embedded[1], sentences[1], "k", later())  # same key, new text
    assert len(idx) == 1
    assert idx.search("s", embedded[0], min_similarity=0.999) == []
    idx.add("s", embedded[1], sentences[1], "k2", later())  # same text, new key
    assert len(idx) == 1
    assert idx.search("s", embedded[1], min_similarity=0.999)[0].entry_key == "k2"


def test_matrix_grows_and_slots_are_reused(
    sentences: list[str], embedded: F32, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "CHUNK", 8)
    idx = VectorIndex(384)
    for i in range(50):
        idx.add("s", embedded[i], sentences[i], f"k{i}", later())
    assert idx.search("s", embedded[49], min_similarity=0.999)[0].entry_key == "k49"
    assert idx.remove_scopes(lambda s: True) == 0
    assert idx.remove_scopes(lambda s: s != "s") == 50
    assert len(idx) == 0 and idx.size("s") == 0


def test_remove_scopes_by_predicate(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384)
    for i, scope in enumerate(["a", "a", "b", "c"]):
        idx.add(scope, embedded[i], sentences[i], f"k{i}", later())
    assert idx.remove_scopes(lambda s: s != "a") == 2
    assert sorted(map(str, idx.scopes())) == ["b", "c"]
    assert len(idx) == 2


@pytest.mark.skipif(vectors._hnswlib() is None, reason="hnswlib is not installed")
def test_large_scope_switches_to_hnsw_with_the_same_answers(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384, ann_min_entries=100)
    idx.add_many(
        ("s", v, t, f"k{i}", later()) for i, (v, t) in enumerate(zip(embedded, sentences, strict=True))
    )
    scope = idx._scopes["s"]
    deadline = time.monotonic() + 30
    while scope.ann is None and time.monotonic() < deadline:  # built in a background thread
        time.sleep(0.02)
    assert scope.ann is not None
    for i in range(0, len(sentences), 7):
        found = idx.search("s", embedded[i], min_similarity=0.9, k=3)
        assert found[0].entry_key == f"k{i}"
    # Changes after the switch go into the graph: a replaced entry is found under its new key only.
    idx.add("s", embedded[3], sentences[3], "replaced", later())
    assert idx.search("s", embedded[3], min_similarity=0.999, k=1)[0].entry_key == "replaced"
    idx.add("s", embedded[4] * -1, "new text", "k4b", later())
    assert idx.search("s", embedded[4] * -1, min_similarity=0.999, k=1)[0].entry_key == "k4b"


def test_expired_rows_do_not_crowd_out_live_ones(sentences: list[str], embedded: F32) -> None:
    idx = VectorIndex(384)
    for n in range(10):  # identical to the query, about to expire
        idx.add("s", embedded[0], f"{sentences[0]} #{n}", f"old{n}", time.time() + 0.1)
    nearest = int(np.argsort(embedded @ embedded[0])[-2])
    idx.add("s", embedded[nearest], sentences[nearest], "live", later())
    time.sleep(0.15)
    found = idx.search("s", embedded[0], min_similarity=0.5, k=3)
    assert [c.entry_key for c in found] == ["live"]
