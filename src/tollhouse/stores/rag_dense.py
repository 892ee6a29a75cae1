"""Dense search over one collection's vectors held in memory: exact (one matrix product) up to
``exact_limit`` vectors, HNSW (hnswlib) beyond. The backends load a collection's vectors once per version
(every write bumps it) and keep them here; a metadata filter becomes a mask over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tollhouse.stores.rag_base import F32, Filters, match


@dataclass(slots=True)
class DenseIndex:
    ids: npt.NDArray[np.int64]
    vectors: F32
    metas: list[dict[str, Any]]  # the document metadata of each row
    exact_limit: int = 20_000
    _hnsw: Any = field(default=None, repr=False)

    def search(self, query: F32, k: int, filters: Filters | None) -> list[tuple[int, float]]:
        n = len(self.ids)
        if n == 0 or k <= 0:
            return []
        mask = None
        if filters:
            mask = np.fromiter((match(m, filters) for m in self.metas), dtype=bool, count=n)
            if not mask.any():
                return []
        if n > self.exact_limit and mask is None:
            return self._approx(query, k)
        scores = self.vectors @ query.astype(np.float32)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        k = min(k, n if mask is None else int(mask.sum()))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(self.ids[i]), float(scores[i])) for i in top]

    def _approx(self, query: F32, k: int) -> list[tuple[int, float]]:
        if self._hnsw is None:
            import hnswlib

            index = hnswlib.Index(space="ip", dim=self.vectors.shape[1])
            index.init_index(max_elements=len(self.ids), ef_construction=100, M=16)
            index.add_items(self.vectors, np.arange(len(self.ids)))
            index.set_ef(max(64, k * 2))
            self._hnsw = index
        labels, dists = self._hnsw.knn_query(query.reshape(1, -1), k=min(k, len(self.ids)))
        return [(int(self.ids[i]), float(1.0 - d)) for i, d in zip(labels[0], dists[0], strict=True)]


class DenseCache:
    """Per (tenant, collection): the version loaded and its index."""

    def __init__(self, exact_limit: int = 20_000) -> None:
        self.exact_limit = exact_limit
        self._entries: dict[tuple[str, str], tuple[int, DenseIndex]] = {}

    def get(self, tenant: str, name: str, version: int) -> DenseIndex | None:
        entry = self._entries.get((tenant, name))
        return entry[1] if entry is not None and entry[0] == version else None

    def put(self, tenant: str, name: str, version: int, index: DenseIndex) -> DenseIndex:
        index.exact_limit = self.exact_limit
        self._entries[(tenant, name)] = (version, index)
        return index

    def drop(self, tenant: str, name: str) -> None:
        self._entries.pop((tenant, name), None)


def to_blob(v: F32) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def from_blobs(blobs: list[bytes], dim: int) -> F32:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)
