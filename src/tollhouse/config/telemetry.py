"""The `telemetry:` section: metrics, tracing, evaluation records."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from tollhouse.config.base import Strict

_BOOL = TypeAdapter(bool)


class MetricsSettings(Strict):
    """Prometheus metrics (docs/OBSERVABILITY.md lists every family)."""

    enabled: bool = Field(True, description="Collect metrics and serve them at `path`.")
    path: str = Field(
        "/metrics", pattern=r"^/[A-Za-z0-9/_.\-]*$", description="Scrape path on the main port."
    )
    public: bool = Field(
        False,
        description="Anyone may scrape. Off: while auth is on (an admin key is set or any API key exists), "
        "scrapes must present the admin key (403 when none is set), since the metrics name models, "
        "deployments and API key ids; in open mode they stay public. "
        "`require_admin_key`, its former name with the opposite meaning, is still read.",
    )
    key_labels: bool = Field(
        True,
        description="Label cost by API key id and team. Turn off when there are thousands of keys.",
    )
    sample_interval_s: float = Field(
        1.0,
        gt=0,
        description="With several workers (multiprocess mode), how often each worker publishes its gauges "
        "(in-flight requests, embedded-model queue depth).",
    )

    @model_validator(mode="before")
    @classmethod
    def _former_name(cls, data: Any) -> Any:
        """`require_admin_key: X` (before `public`) still means `public: not X`; `public` wins if both."""
        if isinstance(data, dict) and "require_admin_key" in data:
            data = dict(data)
            value = data.pop("require_admin_key")
            try:
                former = _BOOL.validate_python(value)  # "true" from the environment too
            except ValidationError:
                raise ValueError(f"require_admin_key must be true or false, got {value!r}") from None
            data.setdefault("public", not former)
        return data


class TracingSettings(Strict):
    """OpenTelemetry traces: one span per request, a child per pipeline stage."""

    exporter: Literal["off", "console", "otlp"] = Field(
        "off", description="`off` (no spans are created at all), `console` (stdout) or `otlp` (OTLP/HTTP)."
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint (with `exporter: otlp`)."
    )
    otlp_headers_env: str | None = Field(
        None,
        description="Name of the environment variable holding OTLP headers (`k1=v1,k2=v2`, e.g. an API key).",
    )
    service_name: str = Field("tollhouse", description="`service.name` resource attribute.")
    sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of new traces recorded; a caller's sampled flag is honoured."
    )


class EvaluationSettings(Strict):
    """Evaluation records (one per sampled request) and `POST /v1/feedback`. Never stores prompt or
    completion text."""

    enabled: bool = Field(False, description="Record requests and accept feedback.")
    sample_rate: float = Field(1.0, ge=0, le=1, description="Share of requests that get a record.")
    backend: Literal["sqlite", "postgres"] = Field("sqlite", description="Where records are kept.")
    sqlite_path: str = Field("tollhouse.db", description="SQLite file (with `backend: sqlite`).")
    postgres_dsn_env: str | None = Field(
        None, description="Name of the environment variable holding the PostgreSQL DSN (`backend: postgres`)."
    )
    retention_days: float = Field(30.0, gt=0, description="Records and feedback older than this are deleted.")
    flush_interval_s: float = Field(
        1.0, gt=0, description="Longest time a record waits before it is written."
    )
    max_queue: int = Field(
        10_000, gt=0, description="Records waiting to be written; beyond, new ones are dropped."
    )


class TelemetrySettings(Strict):
    """Metrics, traces, per-response timing headers and evaluation records."""

    server_timing: bool = Field(
        True, description="Send `server-timing` (stage breakdown) and `x-tollhouse-overhead-ms` headers."
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Prometheus.")
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="OpenTelemetry.")
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings, description="Evaluation.")
