"""Builds the cache stage from the `cache:` settings: the store backend, and with mode `semantic` (the
default or any override) the embedder and the vector index. ``cache.mode: off`` with no override that
turns it on gives no stage (None): the composition root puts the pass-through seam in its place."""

from __future__ import annotations

from typing import Any

from tollhouse.caching.base import CacheStore
from tollhouse.caching.semantic import SemanticConfig, SemanticIndex
from tollhouse.caching.stage import ResponseCacheStage
from tollhouse.config.cache import CacheSettings
from tollhouse.config.routing import RedisSettings
from tollhouse.pricing import PriceBook


def build_store(cfg: CacheSettings, redis: RedisSettings) -> CacheStore:
    if cfg.backend == "redis":
        from tollhouse.caching.redis_store import RedisCacheStore

        return RedisCacheStore(redis.url, redis.prefix)
    if cfg.backend == "sqlite":
        from tollhouse.caching.sqlite_store import SqliteCacheStore

        return SqliteCacheStore(cfg.sqlite_path)
    from tollhouse.caching.lru import LRUStore

    return LRUStore(cfg.max_bytes)


def build_cache(cfg: CacheSettings, redis: RedisSettings, prices: PriceBook) -> ResponseCacheStage | None:
    modes = {cfg.mode} | {o.mode for o in cfg.overrides if o.mode is not None}
    if modes == {"off"}:
        return None
    index = embedder = None
    if "semantic" in modes:
        from tollhouse.caching.embedder import EncoderEmbedder
        from tollhouse.caching.semantic import semantic_config

        index = build_semantic_index(
            semantic_config(cfg.semantic), redis_url=redis.url, redis_prefix=redis.prefix
        )
        embedder = EncoderEmbedder()
    return ResponseCacheStage(cfg, build_store(cfg, redis), prices, index=index, embedder=embedder)


def build_semantic_index(
    cfg: SemanticConfig, *, redis_url: str | None = None, redis_prefix: str = "tollhouse:"
) -> SemanticIndex:
    """The index ``cfg.backend`` names (not started: call ``start()`` in the lifespan)."""
    common: dict[str, Any] = {
        "threshold": cfg.threshold,
        "max_entries": cfg.max_entries,
        "checks": cfg.checks,
        "ann_min_entries": cfg.ann_min_entries,
    }
    if cfg.backend == "sqlite":
        from tollhouse.caching.semantic_sqlite import SqliteSemanticIndex

        return SqliteSemanticIndex(cfg.sqlite_path, **common)
    if cfg.backend == "redis":
        if not redis_url:
            raise ValueError("cache.semantic.backend redis needs a Redis URL (redis.url)")
        from tollhouse.caching.semantic_shared import RedisSemanticIndex

        return RedisSemanticIndex(redis_url, redis_prefix, **common)
    from tollhouse.caching.vectors import MemorySemanticIndex

    return MemorySemanticIndex(**common)
