"""One settings tree for the whole gateway.

Layers, lowest to highest: code defaults → YAML (``--config``, ``TOLLHOUSE_CONFIG`` or ``./tollhouse.yaml``)
→ ``.env`` → environment (``TOLLHOUSE_`` prefix, ``__`` between nested names). ``load_settings`` turns a bad
value into a ``ConfigError`` whose message names the field and the value.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from tollhouse.config.access import (
    BudgetLimit,
    BudgetsSettings,
    EmergencySettings,
    KeysSettings,
    LedgerSettings,
    LimitsSettings,
)
from tollhouse.config.base import (
    ConfigError,
    Strict,
)
from tollhouse.config.cache import CacheOverride, CacheSettings, SemanticCacheSettings
from tollhouse.config.cors import CorsSettings
from tollhouse.config.guardrails import (
    ChainOverride,
    GuardLimits,
    GuardrailSettings,
    InjectionSettings,
    PIISettings,
    RuleEntry,
    StreamGuardSettings,
)
from tollhouse.config.models import (
    AnthropicModel,
    EncoderModel,
    LlamaCppModel,
    MockModel,
    ModelBase,
    ModelConfig,
    OpenAIModel,
    Pricing,
    Timeouts,
)
from tollhouse.config.prompts import PromptsSettings, RollbackSettings
from tollhouse.config.rag import RagSettings
from tollhouse.config.routing import (
    AutoRouterConfig,
    BreakerSettings,
    CascadeCheck,
    ErrorClass,
    FallbackRule,
    GroupConfig,
    GroupMember,
    IdempotencySettings,
    RedisSettings,
    RetrySettings,
    RoutingSettings,
)
from tollhouse.config.telemetry import (
    EvaluationSettings,
    MetricsSettings,
    TelemetrySettings,
    TracingSettings,
)
from tollhouse.config.tools import ToolsSettings

# Section classes live in tollhouse.config.*; this module is the one place callers import them from.
__all__ = [
    "AnthropicModel",
    "AuthSettings",
    "AutoRouterConfig",
    "BreakerSettings",
    "BudgetLimit",
    "BudgetsSettings",
    "CacheOverride",
    "CacheSettings",
    "CascadeCheck",
    "ChainOverride",
    "ConfigError",
    "CorsSettings",
    "EmbeddedSettings",
    "EmergencySettings",
    "EncoderModel",
    "ErrorClass",
    "EvaluationSettings",
    "FallbackRule",
    "GroupConfig",
    "GroupMember",
    "GuardLimits",
    "GuardrailSettings",
    "IdempotencySettings",
    "InjectionSettings",
    "KeysSettings",
    "LedgerSettings",
    "LimitsSettings",
    "LlamaCppModel",
    "LoggingSettings",
    "MetricsSettings",
    "MockModel",
    "ModelBase",
    "ModelConfig",
    "OpenAIModel",
    "PIISettings",
    "Pricing",
    "PromptsSettings",
    "RedisSettings",
    "RetrySettings",
    "RollbackSettings",
    "RoutingSettings",
    "RuleEntry",
    "SemanticCacheSettings",
    "ServerSettings",
    "Settings",
    "StreamGuardSettings",
    "Strict",
    "TelemetrySettings",
    "Timeouts",
    "TracingSettings",
    "format_validation_error",
    "load_settings",
    "resolve_config_path",
]

_yaml_path: ContextVar[Path | None] = ContextVar("tollhouse_yaml_path", default=None)


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
    cors: CorsSettings = Field(
        default_factory=CorsSettings, description="Cross-origin requests from browser apps (off by default)."
    )


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


class AuthSettings(Strict):
    """Who may call the gateway."""

    admin_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the admin key: it opens `/admin` and is "
        "accepted on every route. When set, or once any API key exists (`keys:`), every request must present "
        "a key (`Authorization: Bearer` or `X-API-Key`).",
    )


class EmbeddedSettings(Strict):
    """Models that run inside the gateway with nothing else installed."""

    chat: bool = Field(True, description="Serve SmolLM2-135M-Instruct as model `local`.")
    embeddings: bool = Field(True, description="Serve all-MiniLM-L6-v2 as model `local-embed`.")
    completions: bool = Field(
        False, description="Serve Gemma 3 270M (base) as `local-completion` (needs the gemma package)."
    )


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
    keys: KeysSettings = Field(default_factory=KeysSettings, description="API keys.")
    limits: LimitsSettings = Field(default_factory=LimitsSettings, description="Rate limits.")
    budgets: BudgetsSettings = Field(default_factory=BudgetsSettings, description="Spend budgets.")
    emergency: EmergencySettings = Field(default_factory=EmergencySettings, description="Emergency mode.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings, description="Usage ledger.")
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings, description="Guardrails.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="Response cache.")
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings, description="Embedded models.")
    models: list[ModelConfig] = Field(default_factory=list, description="Model deployments (see below).")
    routing: RoutingSettings = Field(default_factory=RoutingSettings, description="Routing.")
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings, description="Idempotency.")
    prompts: PromptsSettings = Field(default_factory=PromptsSettings, description="Stored prompts.")
    redis: RedisSettings = Field(default_factory=RedisSettings, description="Redis.")
    tools: ToolsSettings = Field(default_factory=ToolsSettings, description="Server-side tools.")
    rag: RagSettings = Field(default_factory=RagSettings, description="Retrieval (collections).")

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
        targets = (
            ("budgets.downgrade_to", self.budgets.downgrade_to),
            ("emergency.model", self.emergency.model),
        )
        for field, target in targets:
            if target is not None and target not in public:
                raise ValueError(f"{field}: unknown model or group {target!r}")
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
