"""In-process vector index: one contiguous float32 matrix per scope (exact ``matrix @ vector``), plus an
HNSW graph (hnswlib, when installed) for scopes past ``ann_min_entries``, where exact search stops being
cheap (100k vectors of 384-d: ~14 ms, memory-bound). Thread-safe; bounded by ``max_entries`` over all scopes,
expired entries purged first, then the oldest evicted (ADR 0009).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tollhouse.caching.semantic import (
    ANN_MIN_ENTRIES,
    CHECKS,
    SemanticHit,
    SemanticScope,
    TextFeatures,
    mismatch,
    vocabulary,
)

F32 = npt.NDArray[np.float32]
log = logging.getLogger("tollhouse.cache")

CHUNK = 1024  # rows a scope's matrix grows by
PURGE_EVERY_S = 30.0
INLINE_SEARCH_MAX = 4096  # scopes up to this size are searched on the event loop (< ~0.2 ms)
CANDIDATES = 8  # neighbours above the threshold tried against the match checks, best first
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF = 16, 100, 64  # recall@1 1.0 on real embeddings at 100k, ~0.2 ms


def _hnswlib() -> Any:
    try:
        return importlib.import_module("hnswlib")
    except ImportError:
        return None


@dataclass(slots=True)
class Candidate:
    similarity: float
    text: str
    entry_key: str


class _Scope:
    """The rows of one scope. Freed slots are reused; ``expires[slot] == 0`` marks a free slot."""

    def __init__(self, dim: int) -> None:
        self.matrix = np.zeros((CHUNK, dim), dtype=np.float32)
        self.expires = np.zeros(CHUNK, dtype=np.float64)
        self.seq = np.zeros(CHUNK, dtype=np.int64)  # global insertion number of each slot's entry
        self.texts: list[str] = [""] * CHUNK
        self.keys: list[str] = [""] * CHUNK
        self.by_key: dict[str, int] = {}
        self.by_text: dict[str, int] = {}
        self.free: list[int] = []
        self.high = 0  # slots [0, high) have been used
        self.live = 0
        self.ann: Any = None  # hnswlib.Index over slots as labels
        self.building = False
        self.dirty: set[int] = set()  # slots changed while the graph was being built

    def slot(self) -> int:
        if self.free:
            return self.free.pop()
        if self.high == len(self.expires):
            grow = len(self.expires) + max(CHUNK, len(self.expires) // 2)
            self.matrix = np.concatenate(
                [self.matrix, np.zeros((grow - self.high, self.matrix.shape[1]), np.float32)]
            )
            self.expires = np.concatenate([self.expires, np.zeros(grow - self.high)])
            self.seq = np.concatenate([self.seq, np.zeros(grow - self.high, np.int64)])
            self.texts += [""] * (grow - self.high)
            self.keys += [""] * (grow - self.high)
        self.high += 1
        return self.high - 1

    def release(self, slot: int) -> None:
        del self.by_key[self.keys[slot]]
        if self.by_text.get(self.texts[slot]) == slot:
            del self.by_text[self.texts[slot]]
        self.expires[slot] = 0.0
        self.matrix[slot] = 0.0
        self.texts[slot] = self.keys[slot] = ""
        self.free.append(slot)
        self.live -= 1
        if self.building:
            self.dirty.add(slot)
        elif self.ann is not None:
            self.ann.mark_deleted(slot)

    def put_ann(self, slot: int) -> None:
        if self.building:
            self.dirty.add(slot)
            return
        if self.ann is None:
            return
        if slot >= self.ann.get_max_elements():
            self.ann.resize_index(max(2 * self.ann.get_max_elements(), slot + 1))
        self.ann.add_items(self.matrix[slot : slot + 1], np.array([slot]), num_threads=1)


class VectorIndex:
    """Vectors with a text, an entry key and an expiry, searched per scope. Every method is thread-safe."""

    def __init__(
        self, dim: int = 384, *, max_entries: int = 100_000, ann_min_entries: int = ANN_MIN_ENTRIES
    ) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self.ann_min_entries = ann_min_entries
        self._lock = threading.Lock()
        self._scopes: dict[Hashable, _Scope] = {}
        self._order: OrderedDict[int, tuple[Hashable, int]] = (
            OrderedDict()
        )  # seq → (scope, slot), oldest first
        self._seq = 0
        self._live = 0
        self._next_purge = 0.0
        self._hnsw = _hnswlib()

    def __len__(self) -> int:
        return self._live

    def size(self, scope: Hashable) -> int:
        s = self._scopes.get(scope)
        return 0 if s is None else s.live

    def add(self, scope: Hashable, vector: F32, text: str, entry_key: str, expires_at: float) -> None:
        """Index one entry; an entry of the scope with the same key or text is replaced."""
        self.add_many([(scope, vector, text, entry_key, expires_at)])

    def add_many(self, rows: Iterable[tuple[Hashable, F32, str, str, float]]) -> None:
        build: list[_Scope] = []
        with self._lock:
            now = time.time()
            for scope, vector, text, entry_key, expires_at in rows:
                if expires_at <= now:
                    continue
                s = self._scopes.get(scope)
                if s is None:
                    s = self._scopes[scope] = _Scope(self.dim)
                for old in (s.by_key.get(entry_key), s.by_text.get(text)):
                    if old is not None and s.expires[old] > 0:
                        self._drop(s, old)
                self._make_room(now)
                slot = s.slot()
                s.matrix[slot] = vector
                s.expires[slot] = expires_at
                self._seq += 1
                s.seq[slot] = self._seq
                s.texts[slot], s.keys[slot] = text, entry_key
                s.by_key[entry_key] = slot
                s.by_text[text] = slot
                s.live += 1
                self._live += 1
                self._order[self._seq] = (scope, slot)
                s.put_ann(slot)
                if (
                    self._hnsw is not None
                    and s.ann is None
                    and not s.building
                    and s.live >= self.ann_min_entries
                ):
                    s.building = True
                    build.append(s)
        for s in build:  # seconds of work for a large scope: in a thread of its own, searches go on exact
            threading.Thread(target=self._build_ann, args=(s,), name="semantic-hnsw", daemon=True).start()

    def search(self, scope: Hashable, vector: F32, *, min_similarity: float, k: int = 8) -> list[Candidate]:
        """Up to ``k`` live entries of the scope with similarity ≥ ``min_similarity``, most similar first."""
        with self._lock:
            s = self._scopes.get(scope)
            if s is None or s.live == 0:
                return []
            now = time.time()
            if now >= self._next_purge:
                self._purge(now)
            found = self._ann_search(s, vector, k) if s.ann is not None else None
            if found is not None:
                slots, sims = found
            else:
                all_sims = s.matrix[: s.high] @ vector
                all_sims[s.expires[: s.high] <= now] = -2.0  # free and expired slots never compete
                slots = np.flatnonzero(all_sims >= min_similarity)
                sims = all_sims[slots]
                if len(slots) > k:
                    top = np.argpartition(-sims, k)[:k]
                    slots, sims = slots[top], sims[top]
            out = [
                Candidate(float(sim), s.texts[slot], s.keys[slot])
                for slot, sim in zip(slots.tolist(), sims.tolist(), strict=True)
                if sim >= min_similarity and s.expires[slot] > now
            ]
        out.sort(key=lambda c: -c.similarity)
        return out

    def remove_scopes(self, keep: Callable[[Hashable], bool]) -> int:
        """Drop every scope for which ``keep(scope)`` is false; returns the entries dropped."""
        with self._lock:
            dropped = 0
            for k in [k for k in self._scopes if not keep(k)]:
                s = self._scopes.pop(k)
                for seq in s.seq[: s.high][s.expires[: s.high] > 0].tolist():
                    self._order.pop(seq, None)
                dropped += s.live
                s.ann = None
            self._live -= dropped
            return dropped

    def scopes(self) -> list[Hashable]:
        with self._lock:
            return list(self._scopes)

    def purge(self, now: float | None = None) -> int:
        """Drop expired entries; returns how many."""
        with self._lock:
            return self._purge(time.time() if now is None else now)

    # ---- internals (lock held) ---------------------------------------------------------------------

    @staticmethod
    def _ann_search(s: _Scope, vector: F32, k: int) -> tuple[npt.NDArray[np.int64], F32] | None:
        if s.live == 0:
            return None
        try:
            labels, dists = s.ann.knn_query(vector, k=min(k, s.live), num_threads=1)
        except RuntimeError:  # fewer reachable neighbours than asked for (many deletions): go exact
            return None
        return labels[0].astype(np.int64), (1.0 - dists[0]).astype(np.float32)

    def _drop(self, s: _Scope, slot: int) -> None:
        self._order.pop(int(s.seq[slot]), None)
        s.release(slot)
        self._live -= 1

    def _purge(self, now: float) -> int:
        dropped = 0
        for s in self._scopes.values():
            for slot in np.flatnonzero((s.expires[: s.high] > 0) & (s.expires[: s.high] <= now)).tolist():
                self._drop(s, slot)
                dropped += 1
        self._next_purge = now + PURGE_EVERY_S
        return dropped

    def _make_room(self, now: float) -> None:
        if now >= self._next_purge:
            self._purge(now)
        while self._live >= self.max_entries and self._order:
            seq, (scope, slot) = self._order.popitem(last=False)
            s = self._scopes.get(scope)
            if s is not None and s.expires[slot] > 0 and s.seq[slot] == seq:
                s.release(slot)
                self._live -= 1

    def _build_ann(self, s: _Scope) -> None:
        with self._lock:
            high = s.high
            rows = s.matrix[:high].copy()
            live = np.flatnonzero(s.expires[:high] > 0)
        try:
            ann = self._hnsw.Index(space="ip", dim=self.dim)
            ann.init_index(max_elements=max(2 * high, CHUNK), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M)
            ann.set_ef(HNSW_EF)
            ann.add_items(rows[live], live, num_threads=1)
        except Exception:
            log.exception("semantic cache: building the HNSW graph failed; the scope stays on exact search")
            with self._lock:
                s.building = False
                s.dirty.clear()
            return
        with self._lock:  # catch up with what changed meanwhile, then switch
            present = set(live.tolist())
            for slot in sorted(s.dirty):
                if s.expires[slot] > 0:
                    if slot >= ann.get_max_elements():
                        ann.resize_index(max(2 * ann.get_max_elements(), slot + 1))
                    ann.add_items(s.matrix[slot : slot + 1], np.array([slot]), num_threads=1)
                    present.add(slot)
                elif slot in present:
                    ann.mark_deleted(slot)
                    present.discard(slot)
            s.dirty.clear()
            s.building = False
            s.ann = ann


# ---- the in-process index (the memory backend, and the search engine of the others) -----------------


class MemorySemanticIndex:
    """``SemanticIndex`` over a ``VectorIndex`` in this process; large scopes are searched off the loop."""

    def __init__(
        self,
        *,
        threshold: float = 0.95,
        max_entries: int = 100_000,
        checks: bool = True,
        ann_min_entries: int = ANN_MIN_ENTRIES,
        dim: int = 384,
    ) -> None:
        self.threshold = threshold
        self.checks: tuple[str, ...] = CHECKS if checks else ()
        self.vectors = VectorIndex(dim, max_entries=max_entries, ann_min_entries=ann_min_entries)

    def match(self, scope: SemanticScope, vector: F32, text: str) -> SemanticHit | None:
        """``search`` without the event loop (blocking; the caller picks the thread)."""
        found = self.vectors.search(scope, vector, min_similarity=self.threshold, k=CANDIDATES)
        if not found:
            return None
        query = TextFeatures.of(text)
        for c in found:
            if not self.checks or mismatch(TextFeatures.of(c.text), query, self.checks) is None:
                return SemanticHit(c.entry_key, c.similarity)
        return None

    async def search(self, scope: SemanticScope, vector: F32, text: str) -> SemanticHit | None:
        if self.vectors.size(scope) <= INLINE_SEARCH_MAX:
            return self.match(scope, vector, text)
        return await asyncio.to_thread(self.match, scope, vector, text)

    async def add(
        self, scope: SemanticScope, vector: F32, text: str, entry_key: str, expires_at: float
    ) -> None:
        # In a large scope an add may grow a big matrix or insert into the HNSW graph (~1 ms): off the loop.
        if self.vectors.size(scope) <= INLINE_SEARCH_MAX:
            self.put(scope, vector, text, entry_key, expires_at)
        else:
            await asyncio.to_thread(self.put, scope, vector, text, entry_key, expires_at)

    def put(self, scope: SemanticScope, vector: F32, text: str, entry_key: str, expires_at: float) -> None:
        """``add`` without the event loop (blocking; backends replaying a log or a table call this)."""
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        self.vectors.add(scope, vec, text, entry_key, expires_at)

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        return self.drop(tenant=tenant, model=model)

    def drop(self, *, tenant: str | None = None, model: str | None = None) -> int:
        def keep(scope: Any) -> bool:
            return not (
                (tenant is None or scope.tenant == tenant) and (model is None or scope.model == model)
            )

        return self.vectors.remove_scopes(keep)

    def entries(self) -> int:
        return len(self.vectors)

    async def start(self) -> None:
        """Loads what the match checks read (the encoder's vocabulary) before the first lookup needs it."""
        if self.checks:
            await asyncio.to_thread(vocabulary)

    async def aclose(self) -> None:
        return None
