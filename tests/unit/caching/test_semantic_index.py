"""The in-process semantic index with the real encoder: scopes, threshold, checks, expiry, bounds,
invalidation, the off-loop embedder and the settings → index factory."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tollhouse.caching.build import build_semantic_index
from tollhouse.caching.embedder import EncoderEmbedder
from tollhouse.caching.semantic import SemanticConfig, SemanticScope, semantic_config
from tollhouse.caching.vectors import MemorySemanticIndex

SCOPE = SemanticScope("key:key_a", "gpt-x", "c0ffee")
RESET = "How do I reset my password?"
RESET_2 = "How can I reset my password?"
WEATHER = "What is the weather like in Paris?"


@pytest.fixture(scope="module")
def embedder() -> EncoderEmbedder:
    e = EncoderEmbedder()
    e.encode_many(["warm up"])
    return e


def later() -> float:
    return time.time() + 3600


async def test_paraphrase_hits_unrelated_misses(embedder: EncoderEmbedder) -> None:
    idx = MemorySemanticIndex(threshold=0.9)
    await idx.add(SCOPE, await embedder.embed(RESET), RESET, "entry-1", later())
    hit = await idx.search(SCOPE, await embedder.embed(RESET_2), RESET_2)
    assert hit is not None and hit.entry_key == "entry-1"
    assert 0.9 <= hit.similarity < 1.0
    assert await idx.search(SCOPE, await embedder.embed(WEATHER), WEATHER) is None
    assert idx.entries() == 1


@pytest.mark.parametrize(
    "other",
    [
        SemanticScope("key:key_b", SCOPE.model, SCOPE.context),
        SemanticScope(SCOPE.tenant, "gpt-y", SCOPE.context),
        SemanticScope(SCOPE.tenant, SCOPE.model, "beef"),
    ],
)
async def test_same_text_in_another_scope_never_hits(embedder: EncoderEmbedder, other: SemanticScope) -> None:
    idx = MemorySemanticIndex(threshold=0.5)
    vec = await embedder.embed(RESET)
    await idx.add(SCOPE, vec, RESET, "entry-1", later())
    assert await idx.search(other, vec, RESET) is None
    assert await idx.search(SCOPE, vec, RESET) is not None


async def test_threshold_is_inclusive_and_decides(embedder: EncoderEmbedder) -> None:
    a, b = await embedder.embed(RESET), await embedder.embed(RESET_2)
    sim = float(a @ b)
    below = MemorySemanticIndex(threshold=sim + 1e-4)
    at = MemorySemanticIndex(threshold=sim - 1e-6)
    for idx in (below, at):
        await idx.add(SCOPE, a, RESET, "entry-1", later())
    assert await below.search(SCOPE, b, RESET_2) is None
    assert await at.search(SCOPE, b, RESET_2) is not None


async def test_checks_reject_a_near_identical_look_alike(embedder: EncoderEmbedder) -> None:
    stored, query = "What major events happened in 1994?", "What major events happened in 1995?"
    a, b = await embedder.embed(stored), await embedder.embed(query)
    assert float(a @ b) > 0.85  # the embedding alone cannot tell them apart
    on = MemorySemanticIndex(threshold=0.85, checks=True)
    off = MemorySemanticIndex(threshold=0.85, checks=False)
    for idx in (on, off):
        await idx.add(SCOPE, a, stored, "y1994", later())
    assert await on.search(SCOPE, b, query) is None
    assert (await off.search(SCOPE, b, query)) is not None


async def test_a_failing_best_neighbour_gives_way_to_the_next(embedder: EncoderEmbedder) -> None:
    idx = MemorySemanticIndex(threshold=0.85)
    wrong, right = "Why can't I reset my password?", "How could I reset my password?"
    await idx.add(SCOPE, await embedder.embed(wrong), wrong, "negated", later())
    await idx.add(SCOPE, await embedder.embed(right), right, "right", later())
    hit = await idx.search(SCOPE, await embedder.embed(RESET), RESET)
    assert hit is not None and hit.entry_key == "right"


async def test_expired_entries_never_hit(embedder: EncoderEmbedder) -> None:
    idx = MemorySemanticIndex(threshold=0.9)
    vec = await embedder.embed(RESET)
    await idx.add(SCOPE, vec, RESET, "old", time.time() + 0.15)
    assert await idx.search(SCOPE, vec, RESET) is not None
    await asyncio.sleep(0.2)
    assert await idx.search(SCOPE, vec, RESET) is None


async def test_max_entries_bound(embedder: EncoderEmbedder) -> None:
    idx = MemorySemanticIndex(threshold=0.99, max_entries=3)
    texts = [f"Tell me a fact about the number {n}" for n in range(6)]
    rows = embedder.encode_many(texts)
    for n, (t, v) in enumerate(zip(texts, rows, strict=True)):
        await idx.add(SCOPE, v, t, f"e{n}", later())
    assert idx.entries() == 3
    assert await idx.search(SCOPE, rows[0], texts[0]) is None
    hit = await idx.search(SCOPE, rows[5], texts[5])
    assert hit is not None and hit.entry_key == "e5"


async def test_invalidate_by_tenant_model_and_all(embedder: EncoderEmbedder) -> None:
    idx = MemorySemanticIndex(threshold=0.9)
    vec = await embedder.embed(RESET)
    scopes = [SemanticScope(t, m, "ctx") for t in ("key:a", "key:b") for m in ("m1", "m2")]
    for n, s in enumerate(scopes):
        await idx.add(s, vec, RESET, f"e{n}", later())
    assert await idx.invalidate(tenant="key:a") == 2
    assert await idx.search(scopes[0], vec, RESET) is None
    assert await idx.search(scopes[2], vec, RESET) is not None
    assert await idx.invalidate(model="m1") == 1  # key:b / m1
    assert await idx.search(scopes[2], vec, RESET) is None
    assert await idx.search(scopes[3], vec, RESET) is not None
    assert await idx.invalidate(tenant="key:b", model="m2") == 1
    await idx.add(scopes[0], vec, RESET, "again", later())
    assert await idx.invalidate() == 1
    assert idx.entries() == 0


async def test_large_scopes_are_searched_off_the_event_loop(
    embedder: EncoderEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tollhouse.caching import vectors

    monkeypatch.setattr(vectors, "INLINE_SEARCH_MAX", 1)
    idx = MemorySemanticIndex(threshold=0.9)
    vec = await embedder.embed(RESET)
    threads: list[str] = []
    real = idx.match

    def spy(*args: object) -> object:
        threads.append(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(idx, "match", spy)
    for n, text in enumerate(
        [RESET, "How do I reset my password now?", "Please, how do I reset my password?"]
    ):
        await idx.add(SCOPE, await embedder.embed(text), text, f"e{n}", later())
    assert await idx.search(SCOPE, vec, RESET) is not None
    assert threads and threads[0] != threading.main_thread().name


async def test_embedder_runs_in_its_worker_thread(
    embedder: EncoderEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = embedder.encode_many

    def spy(texts: list[str]) -> object:
        threads.append(threading.current_thread().name)
        return real(texts)

    monkeypatch.setattr(embedder, "encode_many", spy)
    vec = await embedder.embed("  How do I\n reset my password? ")
    assert threads == [threads[0]] and threads[0].startswith("cache-encoder")
    assert vec.shape == (384,) and vec.dtype == np.float32
    assert float(np.linalg.norm(vec)) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vec, real([RESET])[0], atol=1e-6)  # white space folded


def test_factory_builds_each_backend(tmp_path: object) -> None:
    assert isinstance(build_semantic_index(SemanticConfig()), MemorySemanticIndex)
    from tollhouse.caching.shared_index import SharedSemanticIndex
    from tollhouse.settings import RedisSettings
    from tollhouse.stores.semantic import RedisSemanticLog, SqliteSemanticLog

    sq = build_semantic_index(
        SemanticConfig(backend="sqlite", sqlite_path=f"{tmp_path}/s.db", threshold=0.9, max_entries=7)
    )
    assert isinstance(sq, SharedSemanticIndex) and sq.memory.threshold == 0.9
    assert isinstance(sq.log, SqliteSemanticLog) and sq.log.path == f"{tmp_path}/s.db"
    assert sq.log.max_entries == sq.memory.vectors.max_entries == 7
    rd = build_semantic_index(
        SemanticConfig(backend="redis"), RedisSettings(url="redis://127.0.0.1:1/0", prefix="p:")
    )
    assert isinstance(rd, SharedSemanticIndex)
    assert isinstance(rd.log, RedisSemanticLog) and rd.log.stream == "p:semantic:log"
    with pytest.raises(ValueError, match="Redis URL"):
        build_semantic_index(SemanticConfig(backend="redis"))


def test_semantic_config_from_settings() -> None:
    s = SimpleNamespace(threshold=0.97, checks=False, backend="sqlite", sqlite_path="x.db", max_entries=10)
    cfg = semantic_config(s)  # type: ignore[arg-type]
    assert cfg == SemanticConfig(
        threshold=0.97, checks=False, backend="sqlite", sqlite_path="x.db", max_entries=10
    )
