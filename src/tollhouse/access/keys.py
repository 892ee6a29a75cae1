"""API keys: generation (CSPRNG, ``th-`` prefix), hashing, the management service behind ``/admin/keys`` and
``tollhouse keys``, and the in-memory cache the auth stage reads.

Secrets are 256 random bits, so a single SHA-256 is enough to store them (no password stretching: there is
nothing to brute-force) and lets a lookup be one dict access. The cache holds every key of the store and
polls its version counter every ``refresh_interval_s``; a write anywhere (another process, the CLI) moves
the counter and every process reloads — no database read on the request path, revocation seen within a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field, field_validator

from tollhouse.config.access import (
    MAX_BUDGET_USD,
    BudgetUsd,
    KeysSettings,
    RequestsPerMinute,
    TokensPerMinute,
)
from tollhouse.config.base import Strict
from tollhouse.errors import NotFound
from tollhouse.outage import Outage
from tollhouse.stores.base import ApiKey, KeyStore
from tollhouse.stores.build import existing_key_store
from tollhouse.tasks import cancel
from tollhouse.types import KeyLimits, Principal

log = logging.getLogger("tollhouse.keys")

KEY_PREFIX = "th-"
DISPLAY_CHARS = 8


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def numbers_only(value: Any) -> Any:
    """A limit, budget or expiry is a JSON number: ``true`` / ``false`` (which pydantic would read as 1 / 0:
    ``"expires_at": false`` expired the key at once) and strings are refused, naming the field."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")


class ModelLimit(Strict):
    _numbers = field_validator("rpm", "tpm", mode="before")(numbers_only)

    rpm: RequestsPerMinute | None = Field(None, description="Requests per minute on this model.")
    tpm: TokensPerMinute | None = Field(None, description="Tokens per minute on this model.")


class KeySpec(Strict):
    """Fields of a key that callers set (admin API body, CLI flags, dashboard form). On update a field left
    out is unchanged and a field sent as ``null`` is cleared. Numbers only: JSON ``false`` is not an expiry
    of 0 (which would expire the key at once) nor ``true`` a limit of 1."""

    _numbers = field_validator("rpm", "tpm", "daily_usd", "monthly_usd", "expires_at", mode="before")(
        numbers_only
    )

    name: str | None = Field(None, max_length=200)
    user: str | None = Field(None, max_length=200)
    team: str | None = Field(None, max_length=200)
    models: list[str] | None = Field(None, description="Models the key may call; unset: all.")
    rpm: RequestsPerMinute | None = None
    tpm: TokensPerMinute | None = None
    model_limits: dict[str, ModelLimit] | None = None
    daily_usd: BudgetUsd | None = Field(None, description="Spend cap per UTC day (USD).")
    monthly_usd: BudgetUsd | None = Field(None, description="Spend cap per UTC month (USD).")
    expires_at: float | None = Field(None, ge=0, description="Epoch seconds after which the key is refused.")


class KeyService:
    """Create, update, rotate and revoke keys. Each write moves the store's version (every cache reloads)
    and refreshes the local cache at once."""

    def __init__(self, store: KeyStore, cache: KeyCache | None = None) -> None:
        self.store = store
        self.cache = cache

    async def create(self, spec: KeySpec) -> tuple[str, ApiKey]:
        secret = generate_secret()
        key = ApiKey(
            id="key_" + uuid.uuid4().hex[:16],
            hash=hash_secret(secret),
            prefix=secret[: len(KEY_PREFIX) + DISPLAY_CHARS],
            name=spec.name or "",
            created_at=time.time(),
        )
        _apply(key, spec)
        await self._put(key)
        return secret, key

    async def get(self, key_id: str) -> ApiKey:
        key = await self.store.get(key_id)
        if key is None:
            raise NotFound(f"No API key with id '{key_id}'.")
        return key

    async def list(self) -> list[ApiKey]:
        return await self.store.all()

    async def update(self, key_id: str, spec: KeySpec) -> ApiKey:
        key = await self.get(key_id)
        _apply(key, spec)
        await self._put(key)
        return key

    async def revoke(self, key_id: str) -> ApiKey:
        key = await self.get(key_id)
        if key.revoked_at is None:
            key.revoked_at = time.time()
            await self._put(key)
        return key

    async def rotate(self, key_id: str) -> tuple[str, ApiKey]:
        """A new secret for the same key (same id, limits and ledger history); the old one stops at once."""
        key = await self.get(key_id)
        secret = generate_secret()
        key = replace(key, hash=hash_secret(secret), prefix=secret[: len(KEY_PREFIX) + DISPLAY_CHARS])
        await self._put(key)
        return secret, key

    async def _put(self, key: ApiKey) -> None:
        await self.store.put(key)
        if self.cache is not None:
            await self.cache.reload()


def _apply(key: ApiKey, spec: KeySpec) -> None:
    data = spec.model_dump(exclude_unset=True)
    for name, value in data.items():
        if name == "model_limits":
            value = value or {}
        if name == "name":
            value = value or ""
        setattr(key, name, value)


@dataclass(slots=True, frozen=True)
class CachedKey:
    key_id: str
    principal: Principal
    expires_at: float | None
    revoked: bool


def _bounded_usd(usd: float | None) -> float | None:
    """A stored budget within the bounds new ones are held to: one written before they existed (1e308,
    inf, NaN) counts as the largest budget instead of failing every request of its key."""
    if usd is None or usd <= MAX_BUDGET_USD:  # NaN fails the comparison, so it is bounded too
        return usd
    return MAX_BUDGET_USD


def _principal(key: ApiKey) -> Principal:
    per_model = {m: (v.get("rpm"), v.get("tpm")) for m, v in key.model_limits.items()}
    limits = KeyLimits(
        models=None if key.models is None else frozenset(key.models),
        rpm=key.rpm,
        tpm=key.tpm,
        per_model=per_model,
        daily_usd=_bounded_usd(key.daily_usd),
        monthly_usd=_bounded_usd(key.monthly_usd),
    )
    return Principal(key_id=key.id, user=key.user, team=key.team, anonymous=False, limits=limits)


class KeyCache:
    """Hash → key, for every key in the store. ``start`` loads and begins polling; ``aclose`` stops and
    writes the last ``last_used_at`` stamps."""

    def __init__(self, store: KeyStore, cfg: KeysSettings) -> None:
        self.store = store
        self.cfg = cfg
        self._by_hash: dict[str, CachedKey] = {}
        self._version = -1
        self.configured = False  # any key was ever created (revoked ones count: no silent fall-back to open)
        self._used: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.outage = Outage("key store", log, "serving the keys loaded before it went away")

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._poll(), name="tollhouse-key-cache")

    def lookup(self, secret: str) -> CachedKey | None:
        return self._by_hash.get(hash_secret(secret))

    def note_used(self, key_id: str) -> None:
        self._used[key_id] = time.time()

    async def reload(self) -> None:
        async with self._lock:
            version = await self.store.version()
            keys = await self.store.all()
            self._by_hash = {
                k.hash: CachedKey(k.id, _principal(k), k.expires_at, k.revoked_at is not None) for k in keys
            }
            self.configured = bool(keys)
            self._version = version

    async def _poll(self) -> None:
        next_touch = time.monotonic() + self.cfg.touch_interval_s
        while True:
            await asyncio.sleep(self.cfg.refresh_interval_s)
            try:
                if await self.store.version() != self._version:
                    await self.reload()
                if time.monotonic() >= next_touch:
                    next_touch = time.monotonic() + self.cfg.touch_interval_s
                    await self._touch()
            except Exception as exc:  # the store is down: keep serving the last good copy, retry next tick
                self.outage.failed(exc)
                continue
            self.outage.ok()

    async def _touch(self) -> None:
        used, self._used = self._used, {}
        if used:
            await self.store.touch(used)

    async def aclose(self) -> None:
        await cancel(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await self._touch()


def has_keys(cfg: KeysSettings) -> bool:
    """Whether the store holds any key (``tollhouse serve``'s secure-default check; blocking, call it
    before the event loop starts). A SQLite file that does not exist yet holds none and is not created."""
    store = existing_key_store(cfg)
    if store is None:
        return False

    async def count(store: KeyStore) -> bool:
        await store.open()
        try:
            return bool(await store.all())
        finally:
            await store.aclose()

    return asyncio.run(count(store))


def public(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    out = key.public()
    if secret is not None:
        out["key"] = secret
    return out
