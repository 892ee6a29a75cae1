"""Per-request cache directives from the wire: ``Cache-Control: no-cache | no-store``, the
``x-tollhouse-cache-ttl`` header (seconds), and the body's OpenAI-compatible extra field
``"cache": {"no_cache": true, "no_store": true, "ttl": 60, "sampled": true}`` (``no-cache`` / ``no-store``
spelled with dashes are accepted too). A malformed value is a 400 that names the header or field."""

from __future__ import annotations

import math
from typing import Any

from starlette.datastructures import Headers

from tollhouse.errors import InvalidRequest
from tollhouse.types import CacheControl

_BODY_KEYS = {"no_cache", "no-cache", "no_store", "no-store", "ttl", "sampled"}


def _ttl(value: Any, where: str) -> float:
    try:
        ttl = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{where} must be a number of seconds, got {value!r}.", param=where) from None
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidRequest(f"{where} must be a positive number of seconds, got {value!r}.", param=where)
    return ttl


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, body.get(name.replace("_", "-"), False))
    if not isinstance(value, bool):
        raise InvalidRequest(f"cache.{name} must be true or false, got {value!r}.", param=f"cache.{name}")
    return value


def cache_control(headers: Headers, body: Any) -> CacheControl | None:
    """The request's directives, or None when it sent none (the common case: two header lookups)."""
    header = headers.get("cache-control")
    ttl_header = headers.get("x-tollhouse-cache-ttl")
    if header is None and ttl_header is None and body is None:
        return None
    no_cache = no_store = sampled = False
    ttl: float | None = None
    if header is not None:
        directives = {d.strip().lower().split("=", 1)[0] for d in header.split(",")}
        no_cache = "no-cache" in directives
        no_store = "no-store" in directives
    if ttl_header is not None:
        ttl = _ttl(ttl_header.strip(), "x-tollhouse-cache-ttl")
    if body is not None:
        if not isinstance(body, dict):
            raise InvalidRequest('cache must be an object such as {"no_cache": true}.', param="cache")
        unknown = sorted(set(body) - _BODY_KEYS)
        if unknown:
            raise InvalidRequest(
                f"Unknown field(s) in cache: {', '.join(unknown)} (known: no_cache, no_store, ttl, sampled).",
                param="cache",
            )
        no_cache = no_cache or _flag(body, "no_cache")
        no_store = no_store or _flag(body, "no_store")
        if "ttl" in body:
            ttl = _ttl(body["ttl"], "cache.ttl")
        sampled = _flag(body, "sampled")
    return CacheControl(no_cache=no_cache, no_store=no_store, ttl_s=ttl, sampled=sampled)
