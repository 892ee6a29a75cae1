"""The `prompts:` section: the prompt registry, experiments' per-version counters and the rollback policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tollhouse.config.base import Strict


class RollbackSettings(Strict):
    """When a label moves back by itself: the version it now points to answers errors at `error_ratio` times
    the rate of the version it pointed to before, once each has served `min_requests` requests (or its mean
    rating fell by `rating_drop`)."""

    enabled: bool = Field(True, description="Move labels back automatically.")
    min_requests: int = Field(100, ge=1, description="Requests the new version must have served first.")
    error_ratio: float = Field(
        2.0, gt=1, description="New error rate at least this many times the previous version's."
    )
    min_error_rate: float = Field(
        0.02,
        ge=0,
        le=1,
        description="The new version's error rate must also reach this: one error in 100 against a version "
        "that had none is not a regression.",
    )
    rating_drop: float | None = Field(
        None, gt=0, description="Also roll back when the mean rating fell by this much (None: ratings off)."
    )
    min_ratings: int = Field(20, ge=1, description="Ratings each version needs before `rating_drop` applies.")
    webhook_url: str | None = Field(
        None, description="POSTed a JSON event when a rollback happens (in the background, best effort)."
    )
    check_interval_s: float = Field(
        0.5, gt=0, description="How often counters are flushed to the shared store and the policy checked."
    )


class PromptsSettings(Strict):
    """Stored, versioned prompt templates (docs/PROMPTS.md)."""

    enabled: bool = Field(False, description="Serve stored prompts (`prompt` in a request).")
    backend: Literal["files", "sqlite", "postgres"] = Field(
        "files", description="`files` (a folder of YAML files, hot-reloaded), `sqlite` or `postgres`."
    )
    folder: str = Field("prompts", description="The YAML folder (`backend: files`).")
    sqlite_path: str = Field("tollhouse.db", description="SQLite file (`backend: sqlite`).")
    postgres_dsn_env: str | None = Field(
        None, description="Name of the environment variable holding the PostgreSQL DSN (`backend: postgres`)."
    )
    reload_interval_s: float = Field(
        2.0,
        gt=0,
        description="How often the store is polled for changes made elsewhere (files, other replicas).",
    )
    max_output_chars: int = Field(
        200_000, ge=1, description="A rendered template longer than this is refused (400)."
    )
    counters: Literal["memory", "redis", "postgres"] = Field(
        "memory",
        description="Where per-version counters live: `memory` (this process), or `redis` / `postgres` "
        "(every replica adds to the same counts: needed for rollbacks to see all traffic; `postgres` "
        "uses `postgres_dsn_env`).",
    )
    shadow_timeout_s: float = Field(60.0, gt=0, description="A shadow run still going after this is cut.")
    rollback: RollbackSettings = Field(default_factory=RollbackSettings, description="Automatic rollback.")
