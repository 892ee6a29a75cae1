"""Operations: what the gateway needs to know about each kind of request, so it runs one stage sequence.

An ``Operation`` describes a capability (chat, legacy text completion, embeddings): how to estimate its
tokens for admission, how its request and answers look to the guardrails, how to call or stream a provider,
and whether (and how) it is cached. ``Gateway.handle`` / ``handle_stream`` run the stages once for all of
them; a new ingress or capability adds an ``Operation`` here, not another copy of the sequence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from tollhouse.caching.entry import Assembler
from tollhouse.caching.entry import replay as entry_replay
from tollhouse.guardrails.limits import tool_name
from tollhouse.guardrails.output import repair_request
from tollhouse.pipeline.cache import ResponseCache
from tollhouse.pipeline.guard import GuardChain
from tollhouse.prompts.apply import apply_chat, quiet_chat
from tollhouse.providers.base import Provider
from tollhouse.routing.auto import cascade
from tollhouse.routing.group import Group
from tollhouse.routing.router import Router
from tollhouse.tokens import PromptCounter, Reach
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ChunkChoice,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    Estimate,
    GuardInput,
    Message,
    PromptRef,
    RenderedPrompt,
    RequestContext,
    ResponseFormat,
    Retrieved,
    TextChoice,
    Usage,
)

Capability = Literal["chat", "completions", "embeddings"]


class Answer(Protocol):
    """What every non-streamed response has: the model name the client sees and its usage."""

    model: str
    usage: Usage


class _Finishing(Protocol):
    @property
    def finish_reason(self) -> str | None: ...


class Chunk(Protocol):
    """What every streamed event has: its usage (the final chunk) and choices with finish reasons."""

    usage: Usage | None

    @property
    def choices(self) -> Sequence[_Finishing]: ...


class Request(Protocol):
    """What every request has: the model name the client asked for (answers carry it back)."""

    model: str


Q = TypeVar("Q", bound=Request)
R = TypeVar("R", bound=Answer)
C = TypeVar("C", bound=Chunk)


@dataclass(frozen=True, slots=True)
class Caching(Generic[Q, R, C]):
    """How an operation meets the response cache: look up, store, replay a hit as a stream, and assemble a
    streamed answer for storing."""

    lookup: Callable[[ResponseCache, RequestContext, Q], Awaitable[R | None]]
    store: Callable[[ResponseCache, RequestContext, Q, R], Awaitable[None]]
    replay: Callable[[R, bool], AsyncIterator[C]]
    assembler: Callable[[], Assembler]


@dataclass(frozen=True, slots=True)
class Prompting(Generic[Q]):
    """How an operation takes a stored prompt: the reference a request carries, the user an experiment may
    assign by, the rendered prompt applied (its messages in front, its model and parameters unless the
    request sets them), and a copy to run in the background (a shadow run: never streamed)."""

    ref: Callable[[Q], PromptRef | None]
    user: Callable[[Q], str | None]
    apply: Callable[[Q, RenderedPrompt], Q]
    quiet: Callable[[Q], Q]


@dataclass(frozen=True, slots=True)
class Retrieving(Generic[Q]):
    """How an operation takes retrieval: the request's spec (None: none asked), the text to search with, and
    the retrieved chunks injected into the request."""

    spec: Callable[[Q], Any]
    query: Callable[[Q], str]
    inject: Callable[[Q, Retrieved], Q]


@dataclass(frozen=True, slots=True)
class Operation(Generic[Q, R, C]):
    """One capability, as the stage sequence sees it (module docstring)."""

    capability: Capability
    # The request as an automatic router classifies it (None: routed by name only).
    route_view: Callable[[Q], ChatRequest | CompletionRequest | None]
    max_tokens: Callable[[Q], int | None]
    # Admission's estimate over the deployments the request may reach (``tokens.Reach``).
    estimate: Callable[[Q, Reach], Estimate]
    include_usage: Callable[[Q], bool]
    check_input: Callable[[GuardChain, RequestContext, Q], Awaitable[Q]]
    check_output: Callable[[GuardChain, RequestContext, R], Awaitable[R]] | None
    guard_stream: Callable[[GuardChain, RequestContext, AsyncIterator[C]], AsyncIterator[C]]
    complete: Callable[[Router, RequestContext, Group, Q], Awaitable[R]]
    open: Callable[[Provider, Q], AsyncIterator[C]]
    finish_reason: Callable[[R], str | None]
    # After an answer failed the requested ``json_schema``: the one repair request (None: no repair).
    repair: Callable[[Q, R, str], Q] | None = None
    caching: Caching[Q, R, C] | None = None
    # Whether a budget policy may move the request to a cheaper model.
    downgradable: bool = True
    # Stored prompts (None: the operation takes none).
    prompting: Prompting[Q] | None = None
    # Retrieval into the prompt (None: the operation takes none).
    retrieving: Retrieving[Q] | None = None


# ---- chat -------------------------------------------------------------------------------------------------


def _tool_names(req: ChatRequest) -> list[str | None] | None:
    return [tool_name(t) for t in req.tools] if req.tools else None


async def _chat_input(guards: GuardChain, ctx: RequestContext, req: ChatRequest) -> ChatRequest:
    got = ctx.retrieval
    if got is not None and got.texts:
        return await _retrieved_input(guards, ctx, req, got)
    inp = GuardInput(req.messages, req.max_tokens, _tool_names(req), req.response_format)
    messages = await guards.check_input(ctx, inp)
    if messages is not req.messages:
        req.messages = messages
    return req


async def _retrieved_input(
    guards: GuardChain, ctx: RequestContext, req: ChatRequest, got: Retrieved
) -> ChatRequest:
    """Retrieved chunks are untrusted documents: the guardrails see each as a tool result (the injection
    guard's document model; ADR 0017), then the checked texts become the one system message again."""
    i, n = got.at, len(got.texts)
    view = [*req.messages[:i], *(Message("tool", t) for t in got.texts), *req.messages[i + 1 :]]
    out = await guards.check_input(
        ctx, GuardInput(view, req.max_tokens, _tool_names(req), req.response_format)
    )
    checked = [m.text() for m in out[i : i + n]]
    req.messages = [*out[:i], Message("system", got.message_text(checked)), *out[i + n :]]
    return req


def _last_user_text(req: ChatRequest) -> str:
    return next((m.text() for m in reversed(req.messages) if m.role == "user"), "")


def _inject(req: ChatRequest, got: Retrieved) -> ChatRequest:
    """The retrieved chunks as one system message just before the last user message."""
    at = next(
        (j for j in range(len(req.messages) - 1, -1, -1) if req.messages[j].role == "user"), len(req.messages)
    )
    got.at = at
    if not got.texts:
        return req
    messages = [*req.messages[:at], Message("system", got.message_text()), *req.messages[at:]]
    return dataclasses.replace(req, messages=messages, retrieval=None)


async def _chat_output(guards: GuardChain, ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
    answers = await guards.check_output(ctx, [c.message for c in resp.choices])
    for choice, msg in zip(resp.choices, answers, strict=True):
        choice.message = msg
    return resp


def _chat_complete(
    router: Router, ctx: RequestContext, group: Group, req: ChatRequest
) -> Awaitable[ChatResponse]:
    def call(g: Group) -> Awaitable[ChatResponse]:
        return router.call(ctx, g, lambda d: d.provider.complete(req), "chat", req.max_tokens)

    auto = router.cascading(req.model)
    return call(group) if auto is None else cascade(ctx, auto, group, req, call)


async def _iterate(chunks: list[ChatChunk]) -> AsyncIterator[ChatChunk]:
    for chunk in chunks:
        yield chunk


def _chat_estimate(req: ChatRequest, reach: Reach) -> Estimate:
    # A non-streamed answer that fails its json_schema is asked for once more (``repair``).
    rf = req.response_format
    repair = not req.stream and isinstance(rf, ResponseFormat) and rf.type == "json_schema"
    return reach.estimate(lambda c: c.chat(req), req.max_tokens, choices=_choices(req), repair=repair)


def _choices(req: ChatRequest | CompletionRequest) -> int:
    """Answers generated per request: ``n``, or the legacy ``best_of`` (each is billed)."""
    best_of = req.extra.get("best_of")
    return max(req.n, best_of if isinstance(best_of, int) else 1, 1)


def _first_finish(resp: ChatResponse | CompletionResponse) -> str | None:
    return resp.choices[0].finish_reason if resp.choices else None


CHAT: Operation[ChatRequest, ChatResponse, ChatChunk] = Operation(
    capability="chat",
    route_view=lambda req: req,
    max_tokens=lambda req: req.max_tokens,
    estimate=_chat_estimate,
    include_usage=lambda req: req.include_usage,
    check_input=_chat_input,
    check_output=_chat_output,
    guard_stream=lambda guards, ctx, chunks: guards.guard_stream(ctx, chunks),
    complete=_chat_complete,
    open=lambda provider, req: provider.stream(req),
    finish_reason=_first_finish,
    repair=repair_request,
    caching=Caching(
        lookup=lambda cache, ctx, req: cache.lookup(ctx, req),
        store=lambda cache, ctx, req, resp: cache.store(ctx, req, resp),
        replay=lambda resp, include_usage: _iterate(entry_replay(resp, include_usage)),
        assembler=Assembler,
    ),
    prompting=Prompting(
        ref=lambda req: req.prompt,
        user=lambda req: req.user,
        apply=apply_chat,
        quiet=quiet_chat,
    ),
    retrieving=Retrieving(spec=lambda req: req.retrieval, query=_last_user_text, inject=_inject),
)


# ---- legacy completions: the prompt is one user message, each choice's text one answer ---------------------


async def _completion_input(
    guards: GuardChain, ctx: RequestContext, req: CompletionRequest
) -> CompletionRequest:
    prompt = [Message("user", req.prompt)]
    messages = await guards.check_input(ctx, GuardInput(prompt, req.max_tokens))
    if messages is not prompt:
        req.prompt = messages[0].text()
    return req


async def _completion_output(
    guards: GuardChain, ctx: RequestContext, resp: CompletionResponse
) -> CompletionResponse:
    answers = await guards.check_output(ctx, [Message("assistant", c.text) for c in resp.choices])
    for choice, msg in zip(resp.choices, answers, strict=True):
        choice.text = msg.text()
    return resp


async def _as_chat(chunks: AsyncIterator[CompletionChunk]) -> AsyncIterator[ChatChunk]:
    async for c in chunks:
        yield ChatChunk(
            id=c.id,
            model=c.model,
            choices=[
                ChunkChoice(t.index, Delta(content=t.text), t.finish_reason, t.logprobs) for t in c.choices
            ],
            usage=c.usage,
            created=c.created,
        )


async def _as_text(chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[CompletionChunk]:
    async for c in chunks:
        yield CompletionChunk(
            id=c.id,
            model=c.model,
            choices=[
                TextChoice(ch.index, ch.delta.content or "", ch.finish_reason, ch.logprobs)
                for ch in c.choices
            ],
            usage=c.usage,
            created=c.created,
        )


def _completion_stream_guard(
    guards: GuardChain, ctx: RequestContext, chunks: AsyncIterator[CompletionChunk]
) -> AsyncIterator[CompletionChunk]:
    """The chat stream guard over a text stream (the chunks are mirrored both ways)."""
    return _as_text(guards.guard_stream(ctx, _as_chat(chunks)))


COMPLETIONS: Operation[CompletionRequest, CompletionResponse, CompletionChunk] = Operation(
    capability="completions",
    route_view=lambda req: req,
    max_tokens=lambda req: req.max_tokens,
    estimate=lambda req, reach: reach.estimate(
        lambda c: c.completion(req), req.max_tokens, choices=_choices(req)
    ),
    include_usage=lambda req: req.include_usage,
    check_input=_completion_input,
    check_output=_completion_output,
    guard_stream=_completion_stream_guard,
    complete=lambda router, ctx, group, req: router.call(
        ctx, group, lambda d: d.provider.complete_text(req), "completions", req.max_tokens
    ),
    open=lambda provider, req: provider.stream_text(req),
    finish_reason=_first_finish,
)


# ---- embeddings: limits and PII on the string inputs; no output, no stream ------------------------------


def _input_tokens(req: EmbeddingRequest) -> int:
    return sum(len(x) // 4 + 1 if isinstance(x, str) else len(x) for x in req.input)


async def _embedding_input(
    guards: GuardChain, ctx: RequestContext, req: EmbeddingRequest
) -> EmbeddingRequest:
    texts = [Message("user", x) for x in req.input if isinstance(x, str)]
    inp = GuardInput(texts, items=len(req.input), tokens=_input_tokens(req))
    messages = await guards.check_input(ctx, inp)
    if texts and len(texts) == len(req.input) and messages is not texts:
        req.input = [m.text() for m in messages]
    return req


def _embedding_estimate(req: EmbeddingRequest, reach: Reach) -> Estimate:
    def count(c: PromptCounter) -> int:
        return sum(c.text(x) if isinstance(x, str) else len(x) for x in req.input)

    return reach.estimate(count, None, output=False)


def _no_stream(provider: Provider, req: EmbeddingRequest) -> AsyncIterator[ChatChunk]:
    raise TypeError("embeddings are not streamed")


EMBEDDINGS: Operation[EmbeddingRequest, EmbeddingResponse, ChatChunk] = Operation(
    capability="embeddings",
    route_view=lambda req: None,
    max_tokens=lambda req: None,
    estimate=_embedding_estimate,
    include_usage=lambda req: False,
    check_input=_embedding_input,
    check_output=None,
    guard_stream=lambda guards, ctx, chunks: chunks,
    complete=lambda router, ctx, group, req: router.call(
        ctx, group, lambda d: d.provider.embed(req), "embeddings", None
    ),
    open=_no_stream,
    finish_reason=lambda resp: None,
    downgradable=False,
)
