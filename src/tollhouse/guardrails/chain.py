"""GuardrailChain: the ``GuardChain`` the gateway calls — input, output and streamed output.

Chains come from config (a default plus per key / model overrides), ordered cheapest first. Each verdict is
applied by mode (shadow: only logged and counted), logged with rule, mode, latency and outcome (never text)
and appended to ``ctx.guardrail_events``. Streams are checked on a sliding window with a hold-back, and
PII placeholders are restored in answers, including across chunk boundaries.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tollhouse.config.guardrails import GuardLimits, GuardrailSettings, RuleEntry
from tollhouse.errors import GuardrailBlocked, ResponseSchemaMismatch
from tollhouse.guardrails.base import Block, Decision, Guardrail, Phase, Redact, Verdict
from tollhouse.guardrails.injection import Encoder, InjectionDetector, InjectionGuard, InjectionModel
from tollhouse.guardrails.limits import LimitsGuard
from tollhouse.guardrails.output import dangerous_commands, response_schema, schema_errors, unsafe_content
from tollhouse.guardrails.pii import PIIGuard, restore
from tollhouse.pipeline.guard import NoGuards
from tollhouse.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ChunkChoice,
    Delta,
    Message,
    RequestContext,
)

log = logging.getLogger("tollhouse.guardrails")
_OPEN_PLACEHOLDER = re.compile(r"<[A-Z_0-9]{0,20}$")


@dataclass(slots=True)
class GuardState:
    """What one request's chain remembers between input and output. Never logged."""

    mapping: dict[str, str] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    limits: GuardLimits | None = None
    output: list[Guardrail] = field(default_factory=list)


@dataclass(slots=True)
class _Chain:
    input: list[Guardrail]
    output: list[Guardrail]
    limits: GuardLimits
    schema_mode: str | None  # mode of the json_schema rule, None when it is not in the chain


class GuardrailChain:
    """Built once in the lifespan from ``settings.guardrails``."""

    def __init__(self, cfg: GuardrailSettings, *, model: InjectionModel | None = None) -> None:
        self.cfg = cfg
        self._encoder: Encoder | None = None
        self._detector: InjectionDetector | None = None
        self._model = model
        self._default = self._build(cfg.input, cfg.output, cfg.limits)
        self._overrides = [
            (
                frozenset(o.keys),
                frozenset(o.models),
                self._build(o.input or cfg.input, o.output or cfg.output, o.limits or cfg.limits),
            )
            for o in cfg.overrides
        ]

    # ---- construction ---------------------------------------------------------------------------------

    def _injection(self) -> InjectionDetector:
        if self._detector is None:
            model = self._model or InjectionModel.load()
            if self.cfg.injection.classifier:
                self._encoder = Encoder()
            self._detector = InjectionDetector(model, self._encoder, classifier=self.cfg.injection.classifier)
        return self._detector

    def _make(self, e: RuleEntry, phase: Phase) -> Guardrail | None:
        phases: frozenset[Phase] = frozenset({phase, "stream"} if phase == "output" else {phase})
        if e.rule == "injection":
            c = self.cfg.injection
            return InjectionGuard(self._injection(), e.mode, roles=frozenset(c.roles), max_chars=c.max_chars)
        if e.rule == "pii":
            return PIIGuard(
                e.mode,
                entities=frozenset(self.cfg.pii.entities),
                reversible=self.cfg.pii.reversible,
                phases=phases,
            )
        if e.rule == "dangerous_commands":
            return dangerous_commands(e.mode, self.cfg.dangerous_patterns, phases)
        if e.rule == "unsafe_content":
            return unsafe_content(e.mode, phases)
        return None  # limits and json_schema are handled by the chain itself

    def _build(self, inp: list[RuleEntry], out: list[RuleEntry], limits: GuardLimits) -> _Chain:
        ins = [g for e in inp if (g := self._make(e, "input")) is not None]
        if any(e.rule == "limits" for e in inp):
            mode = next(e.mode for e in inp if e.rule == "limits")
            ins.append(LimitsGuard(limits, mode))
        outs = [g for e in out if (g := self._make(e, "output")) is not None]
        schema_mode = next((e.mode for e in out if e.rule == "json_schema"), None)
        return _Chain(
            sorted(ins, key=lambda g: g.cost), sorted(outs, key=lambda g: g.cost), limits, schema_mode
        )

    def _select(self, ctx: RequestContext) -> _Chain:
        key, model = ctx.principal.key_id, ctx.model_requested
        for keys, models, chain in self._overrides:
            if (not keys or key in keys) and (not models or model in models):
                return chain
        return self._default

    # ---- running --------------------------------------------------------------------------------------

    async def _run(
        self,
        g: Guardrail,
        phase: Phase,
        messages: list[Message],
        ctx: RequestContext,
        req: ChatRequest | None = None,
    ) -> Verdict:
        t0 = time.perf_counter()
        if isinstance(g, LimitsGuard) and req is not None:
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
        state = GuardState(
            schema=response_schema(req.response_format), limits=chain.limits, output=chain.output
        )
        if chain.schema_mode is None:
            state.schema = None
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
        state = ctx.guard_state if isinstance(ctx.guard_state, GuardState) else GuardState()
        for choice in resp.choices:
            msg = choice.message
            for g in state.output:
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
        return _StreamGuard(self, ctx, chunks).run()

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()


@dataclass(slots=True)
class _Lane:
    """One choice's text: ``pending`` is received but not yet released; ``tail`` is recently released."""

    pending: str = ""
    tail: str = ""


class _StreamGuard:
    def __init__(self, chain: GuardrailChain, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> None:
        self.chain = chain
        self.ctx = ctx
        self.chunks = chunks
        st = ctx.guard_state
        self.state = st if isinstance(st, GuardState) else GuardState()
        # Hold back only when a rule could still stop or rewrite the text (shadow rules only observe), so
        # the default chain keeps token-by-token streaming.
        active = any(g.mode != "shadow" for g in self.state.output)
        self.hold = chain.cfg.stream.hold_back_chars if active else 0
        self.window = chain.cfg.stream.window_chars
        self.lanes: dict[int, _Lane] = {}

    async def _check(self, lane: _Lane) -> str | None:
        """Run the output guardrails on window + pending; returns the blocking rule, if any."""
        text = lane.tail + lane.pending
        for g in self.state.output:
            verdict = await self.chain._run(g, "stream", [Message("assistant", text)], self.ctx)
            if g.mode == "shadow":
                continue
            if isinstance(verdict, Block):
                self.ctx.guardrail_blocked = g.name
                return g.name
            if isinstance(verdict, Redact):
                # Only the unreleased part can still be rewritten: redact it on its own.
                again = await g.check([Message("assistant", lane.pending)], self.ctx)
                if isinstance(again, Redact) and again.messages:
                    lane.pending = again.messages[0].text()
        return None

    def _release(self, lane: _Lane, final: bool) -> str:
        cut = len(lane.pending) if final else max(0, len(lane.pending) - self.hold)
        if not final:
            m = _OPEN_PLACEHOLDER.search(lane.pending[:cut])
            if m is not None:
                cut = m.start()  # never split a placeholder: restore needs it whole
        out, lane.pending = lane.pending[:cut], lane.pending[cut:]
        lane.tail = (lane.tail + out)[-self.window :]
        return restore(out, self.state.mapping)

    def _filtered(self, chunk: ChatChunk, index: int) -> ChatChunk:
        return ChatChunk(
            id=chunk.id,
            model=chunk.model,
            choices=[ChunkChoice(index, Delta(content=""), "content_filter")],
            created=chunk.created,
        )

    async def run(self) -> AsyncIterator[ChatChunk]:
        async for chunk in self.chunks:
            for ch in chunk.choices:
                lane = self.lanes.setdefault(ch.index, _Lane())
                final = ch.finish_reason is not None
                if ch.delta.content:
                    lane.pending += ch.delta.content
                if not lane.pending and not final:
                    continue
                blocked = await self._check(lane) if lane.pending else None
                if blocked is not None:
                    self.ctx.finish_reason = "content_filter"
                    yield self._filtered(chunk, ch.index)
                    return
                released = self._release(lane, final)
                if ch.delta.content is not None or released:
                    ch.delta.content = released
            yield chunk


class _Off(NoGuards):
    def close(self) -> None:
        return None


def build_guards(cfg: GuardrailSettings) -> GuardrailChain | _Off:
    """The chain from config; pass-through when ``guardrails.enabled`` is off."""
    return GuardrailChain(cfg) if cfg.enabled else _Off()
