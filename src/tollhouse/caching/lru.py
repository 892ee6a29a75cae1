"""In-process exact-cache store: an LRU bounded by bytes (the embedded default). Per process."""

from __future__ import annotations

import time
from collections import OrderedDict

ENTRY_OVERHEAD = 200  # bytes charged per entry beyond key and value (dict slot, tuple, strings)


class LRUStore:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        # key → (value, expires_at, tenant, model)
        self._items: OrderedDict[str, tuple[bytes, float, str, str]] = OrderedDict()

    async def open(self) -> None:
        return None

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= time.time():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[0]

    async def set(self, key: str, value: bytes, ttl_s: float, tenant: str, model: str) -> None:
        size = self._size(key, value)
        if size > self.max_bytes:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (value, time.time() + ttl_s, tenant, model)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        doomed = [
            k
            for k, (_, _, t, m) in self._items.items()
            if (tenant is None or t == tenant) and (model is None or m == model)
        ]
        for k in doomed:
            self._drop(k)
        return len(doomed)

    async def entries(self) -> int:
        now = time.time()
        for k in [k for k, item in self._items.items() if item[1] <= now]:
            self._drop(k)
        return len(self._items)

    async def aclose(self) -> None:
        self._items.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        value = self._items.pop(key)[0]
        self.bytes -= self._size(key, value)

    @staticmethod
    def _size(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD
