"""Builds the cache stage from the `cache:` settings: the store backend, and with mode `semantic` (the
default or any override) the embedder and the vector index. ``cache.mode: off`` with no override that
turns it on gives ``NoCache``."""

from __future__ import annotations

from tollhouse.caching.base import CacheStore
from tollhouse.caching.stage import ResponseCacheStage
from tollhouse.config.cache import CacheSettings
from tollhouse.config.routing import RedisSettings
from tollhouse.pipeline.cache import NoCache, ResponseCache
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


def build_cache(cfg: CacheSettings, redis: RedisSettings, prices: PriceBook) -> ResponseCache:
    modes = {cfg.mode} | {o.mode for o in cfg.overrides if o.mode is not None}
    if modes == {"off"}:
        return NoCache()
    index = embedder = None
    if "semantic" in modes:
        from tollhouse.caching.embedder import EncoderEmbedder
        from tollhouse.caching.semantic import build_semantic_index, semantic_config

        index = build_semantic_index(
            semantic_config(cfg.semantic), redis_url=redis.url, redis_prefix=redis.prefix
        )
        embedder = EncoderEmbedder()
    return ResponseCacheStage(cfg, build_store(cfg, redis), prices, index=index, embedder=embedder)
