"""The `cache:` section: exact and semantic response caching, per key and per model (issue 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tollhouse.config.base import Strict

CacheMode = Literal["off", "exact", "semantic"]
CacheAccess = Literal["read_write", "read_only", "write_only"]


class SemanticCacheSettings(Strict):
    """The semantic cache: a stored answer serves a new request whose final user message means the same
    (cosine similarity of the embedded encoder's vectors ≥ `threshold`, plus lexical match checks), in the
    same tenant scope, for the same model, system prompt, tool schema and parameter class."""

    threshold: float = Field(
        0.9375,
        gt=0,
        le=1,
        description="Least cosine similarity for a semantic hit. The default keeps false hits ≤ 1 % on the "
        "paraphrase dev set with the `int8` encoder (`tollhouse eval cache`; docs/QUALITY.md); with "
        "`encoder: exact` the same calibration gives 0.945.",
    )
    encoder: Literal["int8", "exact"] = Field(
        "int8",
        description="Sentence encoder of the cache: `int8` (all-MiniLM-L6-v2 exported to ONNX with int8 "
        "weights, ~2.5x faster, same cache quality; ADR 0016) or `exact` (the numpy reference encoder of "
        "`/v1/embeddings`). Every replica sharing an index must use the same one.",
    )
    checks: bool = Field(
        True,
        description="Lexical match checks on top of the similarity: numbers, negation, entities, rare "
        "words, antonyms, word order, negating prefixes and one-sided qualifiers must agree. Turning them "
        "off raises false hits.",
    )
    ann_min_entries: int = Field(
        20_000,
        ge=1,
        description="A scope with this many vectors is searched with an HNSW index (built in the "
        "background) instead of exactly.",
    )
    backend: Literal["memory", "sqlite", "redis"] = Field(
        "memory",
        description="Vector index: `memory` (per process), `sqlite` (persistent, one host) or `redis` "
        "(a shared log every replica replays into its own index; ADR 0009).",
    )
    sqlite_path: str = Field("tollhouse-cache.db", description="SQLite file (with `backend: sqlite`).")
    max_entries: int = Field(100_000, ge=1, description="Vectors kept per process; the oldest go first.")
    max_turns: int = Field(
        1,
        ge=1,
        description="Only conversations with at most this many user messages are looked up semantically.",
    )
    max_temperature: float = Field(
        1.0, ge=0, le=2, description="Requests sampling hotter than this are never served semantically."
    )
    shadow: bool = Field(
        False,
        description="Compute and log the would-be semantic hit (and count it) but serve the upstream "
        "answer: calibrate the threshold on live traffic before serving.",
    )


class CacheOverride(Strict):
    """Cache policy for some keys and/or models (first match wins; an empty list matches all)."""

    keys: list[str] = Field(default_factory=list, description="API key ids this applies to.")
    models: list[str] = Field(default_factory=list, description="Requested model names this applies to.")
    mode: CacheMode | None = Field(None, description="Replaces `cache.mode`.")
    access: CacheAccess | None = Field(None, description="Replaces `cache.access`.")
    ttl_s: float | None = Field(None, gt=0, description="Replaces `cache.ttl_s`.")
    sampled: bool | None = Field(None, description="Replaces `cache.sampled`.")


class CacheSettings(Strict):
    """Response cache. Exact: the key hashes the canonical request (model, messages with whitespace
    normalised, every output-changing parameter) with the tenant scope and prompt version. Only repeatable
    requests (temperature 0 or a seed) are cached unless `sampled` opts in. Errors, guardrail-blocked,
    filtered and truncated (`length`) answers are never stored; requests whose input guardrails found PII
    are neither looked up nor stored. A hit's tool calls get fresh ids."""

    mode: CacheMode = Field(
        "exact", description="`off`, `exact`, or `semantic` (exact first, then the semantic index)."
    )
    access: CacheAccess = Field(
        "read_write", description="`read_write`, `read_only` (never store) or `write_only` (never serve)."
    )
    backend: Literal["memory", "sqlite", "redis"] = Field(
        "memory",
        description="Where answers are kept: `memory` (per-process LRU bounded by bytes), `sqlite` "
        "(persistent, one host) or `redis` (shared by every replica).",
    )
    max_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="Size bound of the in-process LRU (`backend: memory`)."
    )
    sqlite_path: str = Field("tollhouse-cache.db", description="SQLite file (with `backend: sqlite`).")
    ttl_s: float = Field(
        3600.0,
        gt=0,
        description="How long an answer is served (per request: "
        "`x-tollhouse-cache-ttl` or the body's `cache.ttl`).",
    )
    max_ttl_s: float = Field(
        7 * 86400.0, gt=0, description="Upper bound of a per-request TTL (a longer one is capped)."
    )
    scope: Literal["key", "user", "team", "global"] = Field(
        "key",
        description="Tenant scope of every entry: an answer is served only to callers with the same API key "
        "(`key`), user, team, or to anyone (`global`). Anonymous callers share one scope.",
    )
    max_entry_bytes: int = Field(1024 * 1024, ge=256, description="Larger answers are not stored.")
    sampled: bool = Field(
        False,
        description="Also cache requests that sample: `temperature` above 0 or unset (OpenAI's default is 1) "
        "and no `seed`. Off: only requests whose answer is meant to be repeatable (temperature 0 or a seed) "
        "are looked up and stored, since a caller who samples expects a fresh answer each time. Per "
        "request: the body's `cache.sampled: true`. `mode: semantic` is itself this opt-in for requests "
        "no hotter than `semantic.max_temperature`.",
    )
    semantic: SemanticCacheSettings = Field(
        default_factory=SemanticCacheSettings, description="Semantic matching."
    )
    overrides: list[CacheOverride] = Field(
        default_factory=list, description="Per key / per model policy (first match wins)."
    )

    @model_validator(mode="after")
    def _ttl_bound(self) -> CacheSettings:
        if self.ttl_s > self.max_ttl_s:
            raise ValueError(f"cache.ttl_s ({self.ttl_s:g}) exceeds cache.max_ttl_s ({self.max_ttl_s:g})")
        return self
