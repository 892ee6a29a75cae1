"""``CacheStore``: where exact-cache entries live (bytes under a key, with a TTL and the tenant and model
they belong to, so an administrator can drop them by either). One Protocol, three backends."""

from __future__ import annotations

from typing import Protocol


class CacheStore(Protocol):
    async def open(self) -> None:
        """Connect / create tables. Raises when the store cannot be reached."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The stored value, or None when absent or expired. Raises on a store error (callers treat
        that as a miss)."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float, tenant: str, model: str) -> None:
        """Store (replacing any previous value) for ``ttl_s`` seconds."""
        ...

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop the entries of this tenant and/or model (both None: everything); returns how many."""
        ...

    async def entries(self) -> int:
        """How many live entries there are."""
        ...

    async def aclose(self) -> None: ...
