"""GuardrailChain: the ``GuardChain`` the gateway calls — chat, legacy completions and embeddings.

Chains come from config (a default plus per key / model overrides), ordered cheapest first. Each verdict is
applied by mode (shadow: only logged and counted), logged with rule, mode, latency and outcome (never text)
and appended to ``ctx.guardrail_events``. Completions run the very same rules by being seen as a one-message
chat; embeddings get limits and PII only. Streams: ``guardrails/stream.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from tollhouse.config.guardrails import GuardLimits, GuardrailSettings, RuleEntry
from tollhouse.errors import GuardrailBlocked, ResponseSchemaMismatch
from tollhouse.guardrails.base import Block, Decision, Guardrail, Phase, Redact, Verdict
from tollhouse.guardrails.features import tokenizer
from tollhouse.guardrails.injection import Encoder, InjectionDetector, InjectionGuard, InjectionModel
from tollhouse.guardrails.limits import LimitsGuard
from tollhouse.guardrails.moderation import ModerationModel, UnsafeContentGuard
from tollhouse.guardrails.ner import NERDetector
from tollhouse.guardrails.output import dangerous_commands, response_schema, schema_errors
from tollhouse.guardrails.pii import PIIGuard, restore
from tollhouse.guardrails.stream import StreamGuard
from tollhouse.pipeline.guard import NoGuards
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    Delta,
    EmbeddingRequest,
    GuardState,
    Message,
    RequestContext,
    TextChoice,
)

__all__ = ["GuardrailChain", "build_guards"]
log = logging.getLogger("tollhouse.guardrails")


class _Chain:
    def __init__(
        self, inp: list[Guardrail], out: list[Guardrail], limits: GuardLimits, schema_mode: str | None
    ) -> None:
        self.input = sorted(inp, key=lambda g: g.cost)
        self.output = sorted(out, key=lambda g: g.cost)
        self.limits = limits
        self.schema_mode = schema_mode  # mode of the json_schema rule, None when it is not in the chain
        # Embeddings: limits, and PII that can only be refused or anonymised (no answer to restore into).
        self.embedding: list[Guardrail] = [
            g.anonymising() if isinstance(g, PIIGuard) else g
            for g in self.input
            if isinstance(g, LimitsGuard | PIIGuard)
        ]


class GuardrailChain:
    """Built once in the lifespan from ``settings.guardrails``."""

    def __init__(self, cfg: GuardrailSettings, *, model: InjectionModel | None = None) -> None:
        self.cfg = cfg
        self._encoder: Encoder | None = None
        self._detector: InjectionDetector | None = None
        self._model = model
        self._moderation: ModerationModel | None = None
        self._ner = NERDetector.load() if cfg.pii.ner else None
        self._default = self._build(cfg.input, cfg.output, cfg.limits)
        self._overrides = [
            (
                frozenset(o.keys),
                frozenset(o.models),
                self._build(o.input or cfg.input, o.output or cfg.output, o.limits or cfg.limits),
            )
            for o in cfg.overrides
        ]
        if self._detector is not None or self._moderation is not None:
            tokenizer()  # ~0.5 s once per process: at startup, not on the first request

    # ---- construction ---------------------------------------------------------------------------------

    def _injection(self) -> InjectionDetector:
        if self._detector is None:
            model = self._model or InjectionModel.load()
            if self.cfg.injection.classifier:
                self._encoder = Encoder()
            self._detector = InjectionDetector(model, self._encoder, classifier=self.cfg.injection.classifier)
        return self._detector

    def _make(self, e: RuleEntry, phase: Phase, limits: GuardLimits) -> list[Guardrail]:
        phases: frozenset[Phase] = frozenset({phase, "stream"} if phase == "output" else {phase})
        if e.rule == "injection":
            c = self.cfg.injection
            return [
                InjectionGuard(self._injection(), e.mode, roles=frozenset(c.roles), max_chars=c.max_chars)
            ]
        if e.rule == "pii":
            p = self.cfg.pii
            ents = frozenset(p.entities)
            return [PIIGuard(e.mode, entities=ents, reversible=p.reversible, phases=phases, ner=self._ner)]
        if e.rule == "dangerous_commands":
            return [dangerous_commands(e.mode, self.cfg.dangerous_patterns, phases)]
        if e.rule == "unsafe_content":
            if self.cfg.moderation.classifier and self._moderation is None:
                self._moderation = ModerationModel.load()
            return [UnsafeContentGuard(e.mode, phases, self._moderation)]
        if e.rule == "limits" and phase == "input":
            return [LimitsGuard(limits, e.mode)]
        return []  # json_schema is applied by the chain itself

    def _build(self, inp: list[RuleEntry], out: list[RuleEntry], limits: GuardLimits) -> _Chain:
        ins = [g for e in inp for g in self._make(e, "input", limits)]
        outs = [g for e in out for g in self._make(e, "output", limits)]
        schema_mode = next((e.mode for e in out if e.rule == "json_schema"), None)
        return _Chain(ins, outs, limits, schema_mode)

    def _select(self, ctx: RequestContext) -> _Chain:
        key, model = ctx.principal.key_id, ctx.model_requested
        for keys, models, chain in self._overrides:
            if (not keys or key in keys) and (not models or model in models):
                return chain
        return self._default

    def _output(self, ctx: RequestContext) -> list[Guardrail]:
        """The output rules of the chain the input was checked with (none when it was not checked)."""
        return self._select(ctx).output if ctx.guard_state is not None else []

    # ---- running --------------------------------------------------------------------------------------

    async def _run(
        self,
        g: Guardrail,
        phase: Phase,
        messages: list[Message],
        ctx: RequestContext,
        req: ChatRequest | None = None,
        counts: tuple[int, int] | None = None,
    ) -> Verdict:
        t0 = time.perf_counter()
        if isinstance(g, LimitsGuard) and counts is not None:
            verdict = g.verdict_counts(*counts)
        elif isinstance(g, LimitsGuard) and req is not None:
            verdict = g.verdict(req)
        else:
            verdict = await g.check(messages, ctx)
        ms = (time.perf_counter() - t0) * 1000
        kind = "block" if isinstance(verdict, Block) else "redact" if isinstance(verdict, Redact) else "allow"
        outcome = f"shadow_{kind}" if g.mode == "shadow" and kind != "allow" else kind
        reason = verdict.reason if isinstance(verdict, Block | Redact) else None
        d = Decision(g.name, phase, g.mode, outcome, ms, reason)
        if kind != "allow":
            if ctx.guardrail_events is None:
                ctx.guardrail_events = []
            ctx.guardrail_events.append((g.name, outcome))
        log.log(
            logging.DEBUG if kind == "allow" else logging.INFO,
            "guardrail",
            extra={
                "request_id": ctx.request_id,
                "rule": d.rule,
                "phase": d.phase,
                "mode": d.mode,
                "outcome": d.outcome,
                "latency_ms": round(d.latency_ms, 3),
                "reason": d.reason,
            },
        )
        return verdict

    def _block(self, ctx: RequestContext, rule: str, reason: str) -> GuardrailBlocked:
        ctx.guardrail_blocked = rule
        return GuardrailBlocked(f"The request was blocked by the guardrail '{rule}' ({reason}).")

    async def check_input(self, ctx: RequestContext, req: ChatRequest) -> ChatRequest:
        chain = self._select(ctx)
        schema = response_schema(req.response_format) if chain.schema_mode is not None else None
        state = GuardState(schema=schema)
        ctx.guard_state = state
        messages = req.messages
        for g in chain.input:
            verdict = await self._run(g, "input", messages, ctx, req)
            if g.mode == "shadow":
                continue
            if isinstance(verdict, Block):
                raise self._block(ctx, g.name, verdict.reason)
            if isinstance(verdict, Redact):
                messages = verdict.messages
                state.mapping.update(verdict.mapping)
        if messages is not req.messages:
            req.messages = messages
        return req

    async def check_output(self, ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
        state = ctx.guard_state or GuardState()
        output = self._output(ctx)
        for choice in resp.choices:
            msg = choice.message
            for g in output:
                verdict = await self._run(g, "output", [msg], ctx)
                if g.mode == "shadow":
                    continue
                if isinstance(verdict, Block):
                    raise self._block(ctx, g.name, verdict.reason)
                if isinstance(verdict, Redact) and verdict.messages:
                    msg = verdict.messages[0]
            if state.schema is not None and isinstance(msg.content, str):
                err = schema_errors(msg.content, state.schema)
                if err is not None:
                    if ctx.guardrail_events is None:
                        ctx.guardrail_events = []
                    ctx.guardrail_events.append(("json_schema", "block"))
                    raise ResponseSchemaMismatch(
                        f"The model's answer does not match the requested json_schema: {err}"
                    )
            if isinstance(msg.content, str) and state.mapping:
                msg.content = restore(msg.content, state.mapping)
            choice.message = msg
        return resp

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        return StreamGuard(self._run, self.cfg.stream, ctx, chunks, self._output(ctx)).run()

    # ---- legacy completions: the prompt is one user message, each choice's text one answer ------------

    async def check_completion_input(self, ctx: RequestContext, req: CompletionRequest) -> CompletionRequest:
        chat = ChatRequest(model=req.model, messages=[Message("user", req.prompt)], max_tokens=req.max_tokens)
        chat = await self.check_input(ctx, chat)
        req.prompt = chat.messages[0].text()
        return req

    async def check_completion_output(
        self, ctx: RequestContext, resp: CompletionResponse
    ) -> CompletionResponse:
        as_chat = ChatResponse(
            resp.id,
            resp.model,
            [Choice(c.index, Message("assistant", c.text), c.finish_reason) for c in resp.choices],
            resp.usage,
        )
        checked = await self.check_output(ctx, as_chat)
        for c, out in zip(resp.choices, checked.choices, strict=True):
            c.text = out.message.text()
        return resp

    def guard_completion_stream(
        self, ctx: RequestContext, chunks: AsyncIterator[CompletionChunk]
    ) -> AsyncIterator[CompletionChunk]:
        output = self._output(ctx)
        return _from_chat(StreamGuard(self._run, self.cfg.stream, ctx, _to_chat(chunks), output).run())

    # ---- embeddings: limits and PII on string inputs ---------------------------------------------------

    async def check_embedding_input(self, ctx: RequestContext, req: EmbeddingRequest) -> EmbeddingRequest:
        chain = self._select(ctx)
        texts = [x for x in req.input if isinstance(x, str)]
        tokens = sum(len(x) // 4 + 1 if isinstance(x, str) else len(x) for x in req.input)
        messages = [Message("user", t) for t in texts]
        for g in chain.embedding:
            if isinstance(g, PIIGuard) and not messages:
                continue  # token-id inputs cannot be read
            verdict = await self._run(g, "input", messages, ctx, counts=(len(req.input), tokens))
            if g.mode == "shadow":
                continue
            if isinstance(verdict, Block):
                raise self._block(ctx, g.name, verdict.reason)
            if isinstance(verdict, Redact):
                messages = verdict.messages
        if texts and len(texts) == len(req.input):
            req.input = [m.text() for m in messages]
        return req

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()


async def _to_chat(chunks: AsyncIterator[CompletionChunk]) -> AsyncIterator[ChatChunk]:
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


async def _from_chat(chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[CompletionChunk]:
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


class _Off(NoGuards):
    def close(self) -> None:
        return None


def build_guards(cfg: GuardrailSettings) -> GuardrailChain | _Off:
    """The chain from config; pass-through when ``guardrails.enabled`` is off."""
    return GuardrailChain(cfg) if cfg.enabled else _Off()
