"""Builds the cache stage from the `cache:` settings: the store backend, and with mode `semantic` (the
default or any override) the embedder and the vector index. ``cache.mode: off`` with no override that
turns it on gives no stage (None): the composition root puts the pass-through seam in its place. The
stores come from ``stores.build``."""

from __future__ import annotations

from tollhouse.caching.semantic import SemanticConfig, SemanticIndex
from tollhouse.caching.stage import ResponseCacheStage
from tollhouse.config.cache import CacheSettings
from tollhouse.config.routing import RedisSettings
from tollhouse.pricing import PriceBook
from tollhouse.stores.build import cache_store, semantic_log


def build_cache(cfg: CacheSettings, redis: RedisSettings, prices: PriceBook) -> ResponseCacheStage | None:
    modes = {cfg.mode} | {o.mode for o in cfg.overrides if o.mode is not None}
    if modes == {"off"}:
        return None
    index = embedder = None
    if "semantic" in modes:
        from tollhouse.caching.embedder import EncoderEmbedder
        from tollhouse.caching.semantic import semantic_config

        index = build_semantic_index(semantic_config(cfg.semantic), redis)
        embedder = EncoderEmbedder(encoder=cfg.semantic.encoder)
    return ResponseCacheStage(cfg, cache_store(cfg, redis), prices, index=index, embedder=embedder)


def build_semantic_index(cfg: SemanticConfig, redis: RedisSettings | None = None) -> SemanticIndex:
    """The in-process index, written through to the log ``cfg.backend`` names when it is not ``memory``
    (not started: call ``start()`` in the lifespan). Raises ``ValueError`` for ``redis`` without ``redis``."""
    from tollhouse.caching.vectors import MemorySemanticIndex

    memory = MemorySemanticIndex(
        threshold=cfg.threshold,
        max_entries=cfg.max_entries,
        checks=cfg.checks,
        ann_min_entries=cfg.ann_min_entries,
    )
    log = semantic_log(cfg, redis)
    if log is None:
        return memory
    from tollhouse.caching.shared_index import SharedSemanticIndex

    return SharedSemanticIndex(memory, log)
