"""The SQLite semantic index: entries survive a restart, invalidation and expiry are persisted, the
load is bounded, and a second process on the same file picks up new rows by polling."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from tollhouse.caching.embedder import EncoderEmbedder
from tollhouse.caching.semantic import SemanticScope
from tollhouse.caching.shared_index import SharedSemanticIndex
from tollhouse.caching.vectors import MemorySemanticIndex
from tollhouse.stores.semantic import SqliteSemanticLog

SCOPE = SemanticScope("team:research", "gpt-x", "c0ffee")
RESET = "How do I reset my password?"
RESET_2 = "How can I reset my password?"


@pytest.fixture(scope="module")
def embedder() -> EncoderEmbedder:
    return EncoderEmbedder()


def index(path: Path, *, max_entries: int = 100_000, poll_s: float = 0.0) -> SharedSemanticIndex:
    """``poll_s == 0``: the index does not follow the table (tests call ``sync``)."""
    memory = MemorySemanticIndex(threshold=0.9, max_entries=max_entries)
    log = SqliteSemanticLog(str(path), max_entries=max_entries, poll_s=poll_s)
    return SharedSemanticIndex(memory, log, follow=poll_s > 0)


async def test_entries_survive_a_restart(tmp_path: Path, embedder: EncoderEmbedder) -> None:
    db = tmp_path / "cache.db"
    first = index(db)
    await first.start()
    await first.add(SCOPE, await embedder.embed(RESET), RESET, "entry-1", time.time() + 3600)
    await first.aclose()

    second = index(db)
    await second.start()
    try:
        assert second.entries() == 1
        hit = await second.search(SCOPE, await embedder.embed(RESET_2), RESET_2)
        assert hit is not None and hit.entry_key == "entry-1"
        other = SemanticScope("team:other", SCOPE.model, SCOPE.context)
        assert await second.search(other, await embedder.embed(RESET_2), RESET_2) is None
    finally:
        await second.aclose()
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_invalidation_and_expiry_are_persisted(tmp_path: Path, embedder: EncoderEmbedder) -> None:
    db = tmp_path / "cache.db"
    vec = await embedder.embed(RESET)
    first = index(db)
    await first.start()
    await first.add(SemanticScope("key:a", "m", "c"), vec, RESET, "a", time.time() + 3600)
    await first.add(SemanticScope("key:b", "m", "c"), vec, RESET, "b", time.time() + 3600)
    await first.add(SemanticScope("key:c", "m", "c"), vec, RESET, "c", time.time() + 0.1)
    assert await first.invalidate(tenant="key:a") == 1
    await first.aclose()
    await asyncio.sleep(0.15)

    second = index(db)
    await second.start()
    try:
        assert second.entries() == 1
        assert await second.search(SemanticScope("key:b", "m", "c"), vec, RESET) is not None
        assert await second.search(SemanticScope("key:a", "m", "c"), vec, RESET) is None
        rows = sqlite3.connect(db).execute("SELECT entry_key FROM semantic_cache").fetchall()
        assert rows == [("b",)]  # the expired row was deleted at start
    finally:
        await second.aclose()


async def test_replacing_an_entry_keeps_one_row(tmp_path: Path, embedder: EncoderEmbedder) -> None:
    db = tmp_path / "cache.db"
    idx = index(db)
    await idx.start()
    vec = await embedder.embed(RESET)
    await idx.add(SCOPE, vec, RESET, "old", time.time() + 3600)
    await idx.add(SCOPE, vec, RESET, "new", time.time() + 3600)
    await idx.aclose()
    assert sqlite3.connect(db).execute("SELECT entry_key FROM semantic_cache").fetchall() == [("new",)]


async def test_load_keeps_the_newest_max_entries(tmp_path: Path, embedder: EncoderEmbedder) -> None:
    db = tmp_path / "cache.db"
    texts = [f"Give me a fact about the planet {p}" for p in ("Mars", "Venus", "Jupiter", "Saturn")]
    rows = embedder.encode_many(texts)
    first = index(db)
    await first.start()
    for t, v in zip(texts, rows, strict=True):
        await first.add(SCOPE, v, t, t, time.time() + 3600)
    await first.aclose()

    second = index(db, max_entries=2)
    await second.start()
    try:
        assert second.entries() == 2
        assert await second.search(SCOPE, rows[0], texts[0]) is None
        hit = await second.search(SCOPE, rows[3], texts[3])
        assert hit is not None and hit.entry_key == texts[3]
    finally:
        await second.aclose()


async def test_a_second_process_picks_up_new_rows(tmp_path: Path, embedder: EncoderEmbedder) -> None:
    db = tmp_path / "cache.db"
    writer, reader = index(db), index(db)
    await writer.start()
    await reader.start()
    try:
        vec = await embedder.embed(RESET)
        await writer.add(SCOPE, vec, RESET, "entry-1", time.time() + 3600)
        assert await reader.search(SCOPE, vec, RESET) is None
        assert await reader.sync() == 1
        hit = await reader.search(SCOPE, vec, RESET)
        assert hit is not None and hit.entry_key == "entry-1"
        assert await reader.sync() == 0
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_background_polling(tmp_path: Path, embedder: EncoderEmbedder) -> None:
    db = tmp_path / "cache.db"
    writer = index(db)
    reader = index(db, poll_s=0.05)
    await writer.start()
    await reader.start()
    try:
        vec = await embedder.embed(RESET)
        await writer.add(SCOPE, vec, RESET, "entry-1", time.time() + 3600)
        deadline = time.monotonic() + 5
        while reader.entries() == 0 and time.monotonic() < deadline:
            await _tick()
        assert reader.entries() == 1
        await reader.add(SCOPE, await embedder.embed(RESET_2), RESET_2, "entry-2", time.time() + 3600)
        await _tick()
        assert reader.entries() == 2  # its own row is not applied twice
    finally:
        await writer.aclose()
        await reader.aclose()


async def _tick() -> None:
    await asyncio.sleep(0.06)
