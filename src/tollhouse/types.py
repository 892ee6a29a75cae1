"""Canonical internal models shared by every layer: messages and their content parts, tools and tool calls,
response formats, requests, responses, chunks, usage, provider capabilities, principal, request context.

Wire formats (OpenAI, later Anthropic) are parsed into these at the boundary and rendered from them on the
way out, so stages and providers never see a wire dialect. Plain slotted dataclasses: cheap to build on the
hot path, validated once at the boundary. Longer than 400 lines on purpose: it is the one vocabulary every
layer shares and it imports nothing from the project (``tests/unit/test_imports.py``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np

Ingress = Literal["openai", "anthropic"]


def hex_id() -> str:
    """128 random bits as 32 hex digits, like ``uuid.uuid4().hex`` without its ``getrandom`` system call
    per id (a unique id, not a secret: request and ledger record ids)."""
    return f"{random.getrandbits(128):032x}"


def new_id(prefix: str) -> str:
    """A unique, URL-safe id such as ``chatcmpl-3f2a…``."""
    return f"{prefix}-{hex_id()}"


# ---- what the vocabulary does not model -----------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Raw:
    """A wire value the vocabulary does not model: a content part or tool of an unknown type, or a known one
    in a shape its typed form cannot hold exactly (keys nested where none are expected, a wrong value type).
    Relayed exactly as received; stages treat it as opaque."""

    value: Any  # the JSON value as received: an object (a string for an unknown ``tool_choice``)

    @property
    def type(self) -> str | None:
        """The value's ``type`` key, when it is an object that has a string one."""
        t = self.value.get("type") if isinstance(self.value, dict) else None
        return t if isinstance(t, str) else None


# ---- content parts --------------------------------------------------------------------------------------
# ``extra`` on a part, tool or tool call holds the wire object's keys the type does not model (relayed).


@dataclass(slots=True)
class TextPart:
    text: str
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ImagePart:
    """An image: by ``url`` (``https:``, or a ``data:`` URL kept exactly as the client sent it), or as base64
    ``data`` with its ``media_type`` (ingresses that send the two apart). ``detail``: auto, low or high."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    extra: dict[str, Any] | None = None

    def inline(self) -> tuple[str, str] | None:
        """(media type, base64 data) when the image travels inline, as ``data`` or as a base64 data URL."""
        if self.data is not None:
            return self.media_type or "application/octet-stream", self.data
        url = self.url
        if url is None or not url.startswith("data:"):
            return None
        head, sep, data = url[5:].partition(",")
        if not sep or not head.endswith(";base64"):
            return None
        return head[:-7] or "application/octet-stream", data


@dataclass(slots=True)
class AudioPart:
    """Input audio as base64 ``data`` in ``format`` (wav, mp3, …)."""

    data: str
    format: str
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class FilePart:
    """A document: an uploaded ``file_id``, or inline ``data`` (a data URL) with its ``filename``."""

    file_id: str | None = None
    data: str | None = None
    filename: str | None = None
    extra: dict[str, Any] | None = None


ContentPart = TextPart | ImagePart | AudioPart | FilePart | Raw


# ---- tools and structured output ------------------------------------------------------------------------


@dataclass(slots=True)
class ToolSpec:
    """A function the model may call: its name, what it does, its arguments as a JSON schema, and whether
    the model must follow that schema exactly (``strict``)."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolCall:
    """A call the model made: ``arguments`` is the JSON text exactly as the model produced it (it may not
    even be valid JSON)."""

    id: str
    name: str
    arguments: str
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolCallDelta:
    """A streamed fragment of tool call number ``index``: the first fragment carries ``id``, ``type`` and
    ``name``; later ones append to ``arguments``. Fields a fragment lacks are None."""

    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True, frozen=True)
class ToolChoice:
    """Whether the model may, must or must not call tools: ``auto``, ``required``, ``none``, or ``tool``
    (it must call the one named ``name``)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(slots=True)
class ResponseFormat:
    """The shape the answer must take: free ``text``, any JSON object, or JSON valid against ``schema``
    (``json_schema``, named ``name``; ``strict`` asks the model to follow it exactly)."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    extra: dict[str, Any] | None = None


# ---- messages and requests ------------------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """One chat message: ``content`` is a string or a list of content parts; an assistant message may carry
    the ``tool_calls`` it made, a tool message the ``tool_call_id`` it answers."""

    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall | Raw] | None = None
    tool_call_id: str | None = None
    extra: dict[str, Any] | None = None

    def text(self) -> str:
        """The message's text: the string content, or its text parts joined by newlines."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        # A text part in a shape the vocabulary cannot hold (say, from an upstream) still counts as text.
        return "\n".join(
            p.text if isinstance(p, TextPart) else str(p.value.get("text", ""))
            for p in content
            if isinstance(p, TextPart) or (isinstance(p, Raw) and p.type == "text")
        )


@dataclass(slots=True)
class Usage:
    """Token counts of one request. ``cached_tokens`` is the part of the prompt served from a prompt cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens is not None:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return out


@dataclass(slots=True, frozen=True)
class CacheControl:
    """Per-request cache directives (``Cache-Control`` / ``x-tollhouse-cache-ttl`` headers or the body's
    ``cache`` object): ``no_cache`` skips the lookup but stores the answer, ``no_store`` does neither;
    ``sampled`` caches a request that samples (temperature above 0, no seed)."""

    no_cache: bool = False
    no_store: bool = False
    ttl_s: float | None = None
    sampled: bool = False


@dataclass(slots=True)
class ChatRequest:
    """A chat completion request. ``extra`` carries OpenAI parameters we relay but do not interpret;
    ``vendor`` the top-level fields OpenAI does not define (``top_k``, ``chat_template_kwargs``…, what the
    openai SDK's ``extra_body`` sends): a deployment passes on only those its ``extra_params`` allows."""

    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    n: int = 1
    user: str | None = None
    tools: list[ToolSpec | Raw] | None = None
    tool_choice: ToolChoice | Raw | None = None
    response_format: ResponseFormat | Raw | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    cache: CacheControl | None = None
    vendor: dict[str, Any] = field(default_factory=dict)
    # A stored prompt to render in front of ``messages`` (the prompts stage replaces it with its messages).
    prompt: PromptRef | None = None
    # ``{"collection": …, "k": …}``: chunks to retrieve into the prompt (the retrieval stage validates it).
    retrieval: Any = None


@dataclass(slots=True, frozen=True)
class PromptRef:
    """A request's reference to a stored prompt: its id, a version or a label (neither: the experiment's
    split, else the ``production`` label), the template's variables, and the unit an experiment assigns
    by (None: the key, then the user)."""

    id: str
    version: int | None = None
    label: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None


@dataclass(slots=True)
class Retrieved:
    """What the retrieval stage added to a request: the chunks' texts (injected as one system message at
    ``at``, each behind its marker ``[n]``), their citations, and the stage's figures."""

    collection: str
    texts: list[str]
    citations: list[dict[str, Any]]
    tokens_added: int
    at: int = 0
    preamble: str = ""

    def message_text(self, texts: list[str] | None = None) -> str:
        body = "\n\n".join(f"[{i}] {t.strip()}" for i, t in enumerate(texts or self.texts, 1))
        return f"{self.preamble}\n\n{body}" if self.preamble else body


@dataclass(slots=True)
class RenderedPrompt:
    """A prompt version rendered for one request: its messages (in front of the request's own), and the
    model and parameters it sets unless the request sets them. ``shadow``: a candidate rendered with the
    same variables, to run in the background (never answered)."""

    id: str
    version: int
    messages: list[Message]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    shadow: RenderedPrompt | None = None


@dataclass(slots=True)
class Choice:
    index: int
    message: Message
    finish_reason: str | None
    logprobs: Any = None  # relayed JSON, never read


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    choices: list[Choice]
    usage: Usage
    created: int = field(default_factory=lambda: int(time.time()))
    system_fingerprint: str | None = None


@dataclass(slots=True)
class Delta:
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta | Raw] | None = None
    refusal: str | None = None


@dataclass(slots=True)
class ChunkChoice:
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: Any = None  # relayed JSON, never read


@dataclass(slots=True)
class ChatChunk:
    """One streamed event. A chunk with ``usage`` and no choices is the final usage chunk."""

    id: str
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    system_fingerprint: str | None = None


@dataclass(slots=True)
class CompletionRequest:
    """A legacy text completion request (``/v1/completions``); ``prompt`` is one string. ``extra`` and
    ``vendor`` as in ``ChatRequest``."""

    model: str
    prompt: str
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    n: int = 1
    echo: bool = False
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    vendor: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TextChoice:
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: Any = None  # relayed JSON, never read


@dataclass(slots=True)
class CompletionResponse:
    id: str
    model: str
    choices: list[TextChoice]
    usage: Usage
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass(slots=True)
class CompletionChunk:
    id: str
    model: str
    choices: list[TextChoice]
    usage: Usage | None = None
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass(slots=True)
class EmbeddingRequest:
    """Texts to embed; token-id inputs are relayed to upstreams only."""

    model: str
    input: list[str] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    data: list[list[float]]
    usage: Usage


@dataclass(slots=True)
class GuardInput:
    """What the input guardrails inspect, whatever the operation: the messages (a legacy prompt is one user
    message; embedding inputs one user message per text) and the request facts the limits check.
    ``items`` / ``tokens`` are set for inputs that are not a conversation (embeddings)."""

    messages: list[Message]
    max_tokens: int | None = None
    tool_names: list[str | None] | None = None
    response_format: ResponseFormat | Raw | None = None
    items: int | None = None
    tokens: int | None = None

    @property
    def conversation(self) -> bool:
        return self.items is None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a deployment can do. A request for an operation it lacks (``chat``, ``completions``,
    ``embeddings``) is refused with a 400 before any call. The rest say what its provider serves or relays
    — streaming, tools, images, input audio, JSON-schema output — for the stages and ingresses that need
    to know; a relaying provider declares what it relays, and its upstream may still refuse."""

    chat: bool = True
    completions: bool = False
    embeddings: bool = False
    streaming: bool = True
    tools: bool = False
    vision: bool = False
    audio: bool = False
    json_schema: bool = False


@dataclass(slots=True, frozen=True)
class Estimate:
    """What admission knows before the call: prompt tokens (an upper bound, on the first deployment) and the
    output cap. ``worst``: for budgets, every deployment the request may reach (fallbacks, cascade tiers)
    with the prompt and output tokens it could be billed there in all (empty: the first deployment's)."""

    prompt_tokens: int
    max_output_tokens: int
    worst: tuple[tuple[str, int, int], ...] = ()


class Reservation(Protocol):
    async def settle(self, usage: Usage | None) -> None:
        """Correct the reservation against actual usage. Called once, from a ``finally``."""
        ...


class Settled:
    """A reservation with nothing to give back."""

    __slots__ = ()

    async def settle(self, usage: Usage | None) -> None:
        return None


SETTLED = Settled()


@dataclass(slots=True, frozen=True)
class KeyLimits:
    """What an API key may do: models it may call (None: all), requests / tokens per minute, overall and
    per model (``per_model``: model → (rpm, tpm)), and spend budgets. Built once per key when the key cache
    loads."""

    models: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    per_model: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    daily_usd: float | None = None
    monthly_usd: float | None = None


@dataclass(slots=True)
class Principal:
    """Who is calling. The pass-through authenticator yields the anonymous principal."""

    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    anonymous: bool = True
    limits: KeyLimits | None = None


class ProviderSpan(Protocol):
    """One provider call being traced (``telemetry.tracing``); its trace context goes to the upstream."""

    def first_token(self) -> None: ...

    def detach(self) -> None:
        """Stop propagating this call's context to later upstream requests (the call is under way)."""
        ...

    def end(self, error: BaseException | None) -> None: ...


class StageTracer(Protocol):
    """What a ``RequestContext`` reports to when tracing is on (``telemetry.tracing.RequestTrace``)."""

    def stage(self, name: str, start: float, end: float) -> None: ...

    def provider_call(self, ctx: RequestContext, deployment: str) -> ProviderSpan:
        """Open the span of one attempt on ``deployment``; its context goes to that upstream."""
        ...


@dataclass(slots=True)
class ToolUse:
    """One tool call the gateway ran for a request (``tools_used``, per-tool metrics, ledger line items)."""

    name: str
    arguments: str
    status: str  # "ok" or the error code the model was shown (timeout, invalid_arguments, …)
    duration_s: float
    result: str  # what the model saw, truncated for reporting
    round: int  # the model answer (1-based) that asked for it


# ---- per-request stage state (slots of ``RequestContext``; live as long as the request, never logged) ------


@dataclass(slots=True)
class CachePlan:
    """What the cache stage decided at lookup, read back to store the answer: the entry's key, tenant
    scope, model and TTL, whether to store it, and — when the semantic index may answer — the hash of
    everything but the final user message (``context``), that message's folded text and its vector."""

    tenant: str
    model: str
    key: str
    ttl_s: float
    store: bool
    context: str | None = None
    text: str = ""
    vector: np.ndarray | None = None


@dataclass(slots=True)
class GuardState:
    """What the guardrail chain remembers between a request's input and its answer: PII placeholders and
    the values they stand for, the JSON schema the answer must match (when that rule is on), and what the
    system prompt protects from the answer (secrets; hashed runs of ``run_words`` of its words)."""

    mapping: dict[str, str] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    secrets: tuple[str, ...] = ()
    prompt_runs: frozenset[int] = frozenset()
    run_words: int = 0

    @property
    def protects(self) -> bool:
        return bool(self.secrets or self.prompt_runs)


@dataclass(slots=True)
class RequestContext:
    """Travels through every stage of one request. Typed fields only: no free-form metadata bag."""

    request_id: str
    ingress: Ingress = "openai"
    endpoint: str = "chat"
    started: float = field(default_factory=time.perf_counter)
    principal: Principal = field(default_factory=Principal)
    model_requested: str | None = None
    model_served: str | None = None
    deployment: str | None = None
    stream: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None
    status: int = 200
    error_type: str | None = None
    upstream_seconds: float = 0.0
    ttft_seconds: float | None = None
    cache_status: str | None = None  # hit | semantic-hit | miss | skip (None: no cache stage ran)
    cache_similarity: float | None = None  # cosine similarity of a semantic hit
    cache_saved_usd: float | None = None  # what a hit saved: the stored answer's cost
    # The cache stage's plan, set at lookup when the request may be stored.
    cache_plan: CachePlan | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    attempts: int = 0  # provider calls made (retries and fallbacks included)
    fallbacks: int = 0  # times routing moved on to a fallback group
    route: str | None = None  # an automatic router's decision and reason
    failures: list[str] | None = None  # "deployment:error_class" per failed attempt (None when none failed)
    # Exception class of the outcome (``UpstreamTimeout``, …): error metrics by class, bounded by the tree.
    error_class: str | None = None
    # (rule, outcome) per guardrail verdict, e.g. ("pii", "redact"); for metrics and evaluation records.
    guardrail_events: list[tuple[str, str]] | None = None
    # The rule that blocked the request, if one did (the ledger and evaluation records keep it).
    guardrail_blocked: str | None = None
    # Set by the input guardrails: the PII mapping and the response schema, for the output checks.
    guard_state: GuardState | None = None
    # Set by the prompt registry when the request used a stored template; kept in evaluation records.
    prompt_template: str | None = None
    prompt_version: str | None = None
    # Set by the retrieval stage when the request retrieved chunks (citations, chunk count, tokens added).
    retrieval: Retrieved | None = None
    # USD at the deployment's prices, set when the ledger records the request (None: usage unknown).
    cost_usd: float | None = None
    # OpenAI-style x-ratelimit-* headers from admission (None when the caller has no limits).
    ratelimit_headers: list[tuple[bytes, bytes]] | None = None
    # Set once the ledger has this request's record (so a request is recorded exactly once).
    recorded: bool = False
    # Set when the client disconnected before its answer was complete (a cancelled request is then a 499).
    client_gone: bool = False
    # Set only when tracing is on, so the tracing-off path costs one ``is None`` test per stage.
    tracer: StageTracer | None = None
    # Server-side tools (``tools/``): the calls run and the model answers asked for (None: no gateway tools).
    tools_used: list[ToolUse] | None = None
    tool_rounds: int = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def note_failure(self, deployment: str, error_class: str) -> None:
        if self.failures is None:
            self.failures = []
        self.failures.append(f"{deployment}:{error_class}")

    def mark_stage(self, name: str, start: float) -> float:
        """Add the time since ``start`` (``perf_counter``) to stage ``name``; returns now, for the next
        stage's start. Feeds ``server-timing`` and, when tracing is on, one child span per call."""
        end = time.perf_counter()
        stages = self.stage_seconds
        stages[name] = stages.get(name, 0.0) + (end - start)
        if self.tracer is not None:
            self.tracer.stage(name, start, end)
        return end

    def overhead_seconds(self) -> float:
        """Time spent in the gateway itself: total minus time waiting on the provider."""
        return max(0.0, self.elapsed() - self.upstream_seconds)
