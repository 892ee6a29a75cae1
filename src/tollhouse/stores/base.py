"""One Protocol per stored capability (DESIGN §3): ``KeyStore``, ``RateLimitStore``, ``LedgerStore``,
``BudgetStore``.

Backends live beside this module (memory, sqlite, postgres, redis) and never inherit; the contract suites in
tests/contract run every implementation against the same expectations. None of these is read on the request
path except the admission reserves (rate limits, budgets): keys are cached in memory, ledger writes are
batched, a lost budget counter is rebuilt from the ledger once.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

# ---- API keys ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ApiKey:
    """One issued key. Only ``hash`` (SHA-256 of the secret) and the display ``prefix`` are ever stored."""

    id: str
    hash: str
    prefix: str
    name: str
    created_at: float
    user: str | None = None
    team: str | None = None
    models: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    # model → {"rpm": n | None, "tpm": n | None}: limits of this key on one model, on top of the key's own.
    model_limits: dict[str, dict[str, int | None]] = field(default_factory=dict)
    daily_usd: float | None = None
    monthly_usd: float | None = None
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ApiKey:
        data = json.loads(text)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_row(cls, row: Any) -> ApiKey:
        """From a database row with ``data`` (the JSON) and ``last_used_at`` (kept in its own column)."""
        key = cls.from_json(row["data"])
        if row["last_used_at"] is not None:
            key.last_used_at = row["last_used_at"]
        return key

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but the hash."""
        out = asdict(self)
        out.pop("hash")
        return out


class KeyStore(Protocol):
    """Durable keys plus a version counter that every write moves (the caches poll it)."""

    async def open(self) -> None:
        """Connect and create the tables if needed. Raises when the store cannot be reached."""
        ...

    async def put(self, key: ApiKey) -> None:
        """Insert or replace the key with ``key.id``; bumps the version. Raises ``ValueError`` if another
        key has the same hash."""
        ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def all(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def version(self) -> int:
        """A counter that changes whenever a key is created, changed or revoked."""
        ...

    async def touch(self, last_used: dict[str, float]) -> None:
        """Record ``last_used_at`` per key id (does not move the version: it changes nothing cached)."""
        ...

    async def aclose(self) -> None: ...


# ---- rate limits -------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Bucket:
    """A token bucket holding at most ``capacity`` and refilled at ``capacity`` per minute; admission takes
    ``amount`` from it."""

    key: str
    capacity: int
    amount: int


@dataclass(slots=True, frozen=True)
class BucketState:
    remaining: int
    reset_s: float  # time until the bucket is full again


@dataclass(slots=True, frozen=True)
class Decision:
    """``allowed``: every bucket had enough and all were taken (else none was). ``retry_after_s``: when the
    first refused bucket will hold its amount. ``states`` follow the order of the buckets asked for."""

    allowed: bool
    retry_after_s: float
    states: tuple[BucketState, ...]


class RateLimitStore(Protocol):
    async def reserve(self, buckets: Sequence[Bucket]) -> Decision:
        """Atomically take ``amount`` from every bucket if all hold enough. Raises ``ConnectionError`` /
        ``OSError`` (or the backend's own error) when the store is unreachable."""
        ...

    async def adjust(self, key: str, capacity: int, delta: int) -> None:
        """Return ``delta`` to the bucket (negative: take more; the level may go below zero, which delays
        the next admission). Capped at ``capacity``."""
        ...

    async def aclose(self) -> None: ...


# ---- usage ledger -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class LedgerRecord:
    """One request. ``id`` is unique per record (writes are idempotent on it, so a replay never doubles a
    record); ``cost_usd`` is None when usage is unknown — never 0 for an unknown."""

    id: str
    request_id: str
    ts: float
    endpoint: str
    key_id: str | None
    user: str | None
    team: str | None
    model: str | None
    model_served: str | None
    deployment: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    ttft_ms: float | None
    status: int
    error_class: str | None
    stream: bool
    cache_hit: bool
    guardrails: str | None
    prompt_version: str | None
    # Added later: defaults keep journal rows written by older versions readable.
    cache_status: str | None = None  # hit | semantic-hit | miss | skip
    saved_usd: float | None = None  # on a cache hit: what the stored answer cost to produce
    ingress: str = "openai"  # the wire format the client spoke: openai | anthropic
    # The retrieval stage, when the request named a collection: chunks and tokens it added, its time.
    retrieval_chunks: int | None = None
    retrieval_tokens: int | None = None
    retrieval_ms: float | None = None


LEDGER_COLUMNS = tuple(f.name for f in fields(LedgerRecord))
# A record as a row, in column order. Not dataclasses.astuple: that deep-copies every field (~26 µs per
# record on the benchmark machine, on the event loop; this: ~0.6 µs).
ledger_row: Callable[[LedgerRecord], tuple[Any, ...]] = operator.attrgetter(*LEDGER_COLUMNS)
GROUPS = ("key_id", "user", "team", "model", "day")


class LedgerStore(Protocol):
    async def open(self) -> None:
        """Connect and create the tables if needed. Raises when the store cannot be reached."""
        ...

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        """Append one batch in one transaction; records whose id is already stored are skipped."""
        ...

    async def usage(self, group_by: str, since: float, until: float) -> list[dict[str, Any]]:
        """Aggregates per ``group_by`` (one of ``GROUPS``) over ``since <= ts < until``: requests, errors,
        cache_hits, prompt_tokens, completion_tokens, cost_usd, unknown_cost (records with null cost),
        semantic_hits, cache_misses, saved_usd (what cache hits saved)."""
        ...

    async def spent_usd(
        self, since: float, until: float, by: str | None = None, value: str | None = None
    ) -> float:
        """Sum of the recorded cost over ``since <= ts < until``, of every record or only of those whose
        ``by`` column (``key_id``, ``user`` or ``team``) equals ``value``. Rebuilds lost budget counters."""
        ...

    async def count(self) -> int:
        """Number of records stored."""
        ...

    async def purge(self, before: float) -> int:
        """Delete records with ``ts < before`` (one indexed range delete); returns how many."""
        ...

    async def aclose(self) -> None: ...


USAGE_FIELDS = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "unknown_cost",
    "semantic_hits",
    "cache_misses",
    "saved_usd",
)


def usage_select(group_expr: str, since: str, until: str) -> str:
    """The aggregate query shared by the SQL backends; ``since`` / ``until`` are the placeholders."""
    return (
        f"SELECT {group_expr} AS grp, COUNT(*) AS requests, "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        "SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS cache_hits, "
        "COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
        "COALESCE(SUM(completion_tokens), 0) AS completion_tokens, "
        "COALESCE(SUM(cost_usd), 0) AS cost_usd, "
        "SUM(CASE WHEN cost_usd IS NULL AND status < 400 THEN 1 ELSE 0 END) AS unknown_cost, "
        "SUM(CASE WHEN cache_status = 'semantic-hit' THEN 1 ELSE 0 END) AS semantic_hits, "
        "SUM(CASE WHEN cache_status = 'miss' THEN 1 ELSE 0 END) AS cache_misses, "
        "COALESCE(SUM(saved_usd), 0) AS saved_usd "
        f"FROM ledger WHERE ts >= {since} AND ts < {until} GROUP BY grp ORDER BY cost_usd DESC, grp"
    )


SPEND_COLUMNS = {"key_id": "key_id", "user": '"user"', "team": "team"}


def spent_select(by: str | None, since: str, until: str, value: str) -> str:
    """The recorded cost of one key / user / team (or of everything: ``by`` None) in a time range, shared by
    the SQL backends; ``since`` / ``until`` / ``value`` are the placeholders."""
    where = f"ts >= {since} AND ts < {until}"
    if by is not None:
        where += f" AND {SPEND_COLUMNS[by]} = {value}"
    return f"SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE {where}"


# ---- budgets ----------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Counter:
    """Spend in one budget period, in micro-USD (integers: no float drift across thousands of increments).
    Admission adds ``amount`` only if the total stays within ``limit``; the counter expires ``ttl_s`` after
    its period starts being used."""

    key: str
    limit: int
    amount: int
    ttl_s: int


@dataclass(slots=True, frozen=True)
class Reserved:
    """What ``BudgetStore.reserve`` did. ``missing``: counters that do not exist (never created, expired,
    or lost with a restarted or evicting Redis) — nothing was taken; seed them, then reserve again.
    ``refused``: the first counter that would overflow — nothing was taken. Otherwise every amount was
    taken and ``epochs`` holds each counter's epoch (which seeding of that counter it belongs to)."""

    refused: int | None = None
    missing: tuple[int, ...] = ()
    epochs: tuple[str, ...] = ()


class BudgetStore(Protocol):
    """Budget counters (and plain counters: emergency spend, alert markers). A budget counter is created
    only by ``seed``, with the spend recorded so far and a fresh epoch; a reservation remembers the epoch,
    so its settlement can tell whether the counter was lost and rebuilt meanwhile."""

    async def reserve(self, counters: Sequence[Counter]) -> Reserved:
        """Atomically add every ``amount`` if every counter exists and stays within its ``limit``."""
        ...

    async def seed(self, counters: Sequence[Counter], spent: Sequence[int]) -> None:
        """Create each counter that does not exist with ``spent[i]`` micro-USD and a new epoch (expiring
        ``ttl_s`` later); counters that exist (another process seeded them first) are left alone."""
        ...

    async def settle(self, counters: Sequence[Counter], epochs: Sequence[str], delta: int, cost: int) -> None:
        """Settle reservations taken in ``epochs``: add ``delta`` (actual minus reserved) to each counter
        still in its epoch; add ``cost`` (the actual cost, absent from a counter rebuilt since) to a counter
        in another epoch; leave a missing counter missing (its rebuild reads the ledger)."""
        ...

    async def adjust(self, counters: Sequence[Counter], delta: int) -> None:
        """Add ``delta`` (micro-USD, may be negative) to every counter, creating it: plain counters."""
        ...

    async def spent(self, key: str) -> int:
        """The counter's current value (0 when absent)."""
        ...

    async def aclose(self) -> None: ...
