"""GuardrailChain: the guardrails the gateway runs on every operation (the ``pipeline.guard`` seam).

Chains come from config (a default plus per key / model overrides), ordered cheapest first. Each verdict is
applied by mode (shadow: only logged and counted), logged with rule, mode, latency and outcome (never text)
and appended to ``ctx.guardrail_events``. Operations hand the chain messages (``GuardInput``), so chat and
legacy completions run the very same rules; embeddings get limits and PII only. Streams: ``stream.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from tollhouse.config.guardrails import GuardLimits, GuardrailSettings, RuleEntry
from tollhouse.errors import GuardrailBlocked, OutputBlocked, ResponseSchemaMismatch
from tollhouse.guardrails.base import Block, Decision, Guardrail, Phase, Redact, Verdict
from tollhouse.guardrails.features import tokenizer
from tollhouse.guardrails.injection import Encoder, InjectionDetector, InjectionGuard, InjectionModel
from tollhouse.guardrails.leak import PromptLeakGuard, SecretLeakGuard, protect
from tollhouse.guardrails.limits import LimitsGuard
from tollhouse.guardrails.moderation import ModerationModel, UnsafeContentGuard
from tollhouse.guardrails.ner import NERDetector
from tollhouse.guardrails.output import dangerous_commands, response_schema, schema_errors
from tollhouse.guardrails.pii import PIIGuard, restore
from tollhouse.guardrails.stream import StreamGuard
from tollhouse.types import ChatChunk, GuardInput, GuardState, Message, RequestContext

__all__ = ["GuardrailChain"]
log = logging.getLogger("tollhouse.guardrails")


class _Chain:
    """One configured chain. ``limits`` is a request-level check (it reads the whole ``GuardInput``), run
    first; ``embedding`` is what inputs that are not a conversation get: limits and anonymising PII."""

    def __init__(
        self,
        inp: list[Guardrail],
        out: list[Guardrail],
        limits: GuardLimits,
        limits_guard: LimitsGuard | None,
        embedding: list[Guardrail],
        schema_mode: str | None,
    ) -> None:
        self.input = sorted(inp, key=lambda g: g.cost)
        self.output = sorted(out, key=lambda g: g.cost)
        # The leak rules only apply when the system prompt protects something: without them otherwise, so
        # a request with nothing to protect keeps the stream guard's pass-through (observers only) path.
        leak = (SecretLeakGuard, PromptLeakGuard)
        self.unprotected = [g for g in self.output if not isinstance(g, leak)]
        self.secret_leak = any(isinstance(g, SecretLeakGuard) for g in out)
        self.prompt_leak = any(isinstance(g, PromptLeakGuard) for g in out)
        self.limits = limits
        self.limits_guard = limits_guard
        self.embedding = embedding
        self.schema_mode = schema_mode  # mode of the json_schema rule, None when it is not in the chain


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
            return [self._pii(e, phases)]
        if e.rule == "dangerous_commands":
            return [dangerous_commands(e.mode, self.cfg.dangerous_patterns, phases)]
        if e.rule == "secret_leak":
            return [SecretLeakGuard(e.mode, phases)]
        if e.rule == "prompt_leak":
            return [PromptLeakGuard(e.mode, phases)]
        if e.rule == "unsafe_content":
            if self.cfg.moderation.classifier and self._moderation is None:
                self._moderation = ModerationModel.load()
            return [UnsafeContentGuard(e.mode, phases, self._moderation)]
        return []  # limits and json_schema are applied by the chain itself

    def _pii(self, e: RuleEntry, phases: frozenset[Phase]) -> PIIGuard:
        p = self.cfg.pii
        ents = frozenset(p.entities)
        return PIIGuard(e.mode, entities=ents, reversible=p.reversible, phases=phases, ner=self._ner)

    def _build(self, inp: list[RuleEntry], out: list[RuleEntry], limits: GuardLimits) -> _Chain:
        ins = [g for e in inp for g in self._make(e, "input", limits)]
        outs = [g for e in out for g in self._make(e, "output", limits)]
        limits_mode = next((e.mode for e in inp if e.rule == "limits"), None)
        limits_guard = LimitsGuard(limits, limits_mode) if limits_mode is not None else None
        embedding: list[Guardrail] = [
            self._pii(e, frozenset({"input"})).anonymising() for e in inp if e.rule == "pii"
        ]
        schema_mode = next((e.mode for e in out if e.rule == "json_schema"), None)
        return _Chain(ins, outs, limits, limits_guard, embedding, schema_mode)

    def _select(self, ctx: RequestContext) -> _Chain:
        key, model = ctx.principal.key_id, ctx.model_requested
        for keys, models, chain in self._overrides:
            if (not keys or key in keys) and (not models or model in models):
                return chain
        return self._default

    def _output(self, ctx: RequestContext) -> list[Guardrail]:
        """The output rules of the chain the input was checked with (none when it was not checked)."""
        state = ctx.guard_state
        if state is None:
            return []
        chain = self._select(ctx)
        return chain.output if state.protects else chain.unprotected

    # ---- running --------------------------------------------------------------------------------------

    async def _run(self, g: Guardrail, phase: Phase, messages: list[Message], ctx: RequestContext) -> Verdict:
        t0 = time.perf_counter()
        return self._note(g, phase, await g.check(messages, ctx), t0, ctx)

    def _note(self, g: Guardrail, phase: Phase, verdict: Verdict, t0: float, ctx: RequestContext) -> Verdict:
        """Log and record one verdict (never the text)."""
        ms = (time.perf_counter() - t0) * 1000
        kind = "block" if isinstance(verdict, Block) else "redact" if isinstance(verdict, Redact) else "allow"
        if kind == "allow" and not log.isEnabledFor(logging.DEBUG):
            return verdict  # the common case: nothing to record, and its debug line is off
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

    def _block(
        self, ctx: RequestContext, rule: str, reason: str, phase: Phase = "input"
    ) -> GuardrailBlocked | OutputBlocked:
        """The error for a block: the request's fault on input (400), the answer withheld on output (422)."""
        ctx.guardrail_blocked = rule
        if phase == "output":
            return OutputBlocked(f"The model's answer was withheld by the guardrail '{rule}' ({reason}).")
        return GuardrailBlocked(f"The request was blocked by the guardrail '{rule}' ({reason}).")

    async def check_input(self, ctx: RequestContext, inp: GuardInput) -> list[Message]:
        chain = self._select(ctx)
        lim = chain.limits_guard
        if lim is not None:
            verdict = self._note(lim, "input", lim.verdict(inp), time.perf_counter(), ctx)
            if lim.mode != "shadow" and isinstance(verdict, Block):
                raise self._block(ctx, lim.name, verdict.reason)
        messages = inp.messages
        if not inp.conversation:
            for g in chain.embedding:
                if not messages:
                    break  # token-id inputs cannot be read
                verdict = await self._run(g, "input", messages, ctx)
                if g.mode == "shadow":
                    continue
                if isinstance(verdict, Block):
                    raise self._block(ctx, g.name, verdict.reason)
                if isinstance(verdict, Redact):
                    messages = verdict.messages
            return messages
        schema = response_schema(inp.response_format) if chain.schema_mode is not None else None
        state = GuardState(schema=schema)
        ctx.guard_state = state
        if chain.secret_leak or chain.prompt_leak:
            leak = self.cfg.leak
            protect(
                state,
                messages,
                leak.secrets if chain.secret_leak else (),
                detect=chain.secret_leak and leak.detect_secrets,
                runs=leak.min_words if chain.prompt_leak else None,
            )
        for g in chain.input:
            verdict = await self._run(g, "input", messages, ctx)
            if g.mode == "shadow":
                continue
            if isinstance(verdict, Block):
                raise self._block(ctx, g.name, verdict.reason)
            if isinstance(verdict, Redact):
                messages = verdict.messages
                state.mapping.update(verdict.mapping)
        return messages

    async def check_output(self, ctx: RequestContext, answers: list[Message]) -> list[Message]:
        state = ctx.guard_state or GuardState()
        output = self._output(ctx)
        out: list[Message] = []
        for msg in answers:
            for g in output:
                verdict = await self._run(g, "output", [msg], ctx)
                if g.mode == "shadow":
                    continue
                if isinstance(verdict, Block):
                    raise self._block(ctx, g.name, verdict.reason, "output")
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
            out.append(msg)
        return out

    def guard_stream(self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        return StreamGuard(self._run, self.cfg.stream, ctx, chunks, self._output(ctx)).run()

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()
