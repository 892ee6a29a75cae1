"""Output guardrails on streamed answers: a sliding window, a hold-back, placeholder restoring, JSON schema.

Each choice's text is checked as window (recently released text) + pending (received, not yet released).
Enforce / redact rules run on every chunk and the last ``hold_back_chars`` stay unreleased, so a pattern
split across chunks is seen whole before any of it is sent; a block ends the stream with
``finish_reason: content_filter``. Shadow rules run every ``SHADOW_EVERY`` characters (they only observe).
With a ``json_schema`` response format the whole answer is held and validated before release.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tollhouse.errors import ResponseSchemaMismatch
from tollhouse.guardrails.base import Block, Guardrail, Phase, Redact, Verdict
from tollhouse.guardrails.output import schema_errors
from tollhouse.guardrails.pii import restore
from tollhouse.types import ChatChunk, ChunkChoice, Delta, GuardState, Message, RequestContext

if TYPE_CHECKING:
    from tollhouse.config.guardrails import StreamGuardSettings

_OPEN_PLACEHOLDER = re.compile(r"<[A-Z_0-9]{0,20}$")
# How the chain runs one guardrail (timing, logging, events): ``GuardrailChain._run``.
RunGuard = Callable[[Guardrail, Phase, list[Message], RequestContext], Awaitable[Verdict]]
SHADOW_EVERY = 256  # characters between two runs of the shadow rules (less than the window: no gaps)


@dataclass(slots=True)
class _Lane:
    """One choice's text: ``pending`` is received but not yet released; ``tail`` is recently released."""

    pending: str = ""
    tail: str = ""
    unseen: int = 0  # characters the shadow rules have not looked at yet
    fired: set[str] = field(default_factory=set)  # shadow rules that already reported on this choice


class StreamGuard:
    def __init__(
        self,
        run: RunGuard,
        cfg: StreamGuardSettings,
        ctx: RequestContext,
        chunks: AsyncIterator[ChatChunk],
        output: list[Guardrail],
    ) -> None:
        self.run_guard = run
        self.ctx = ctx
        self.chunks = chunks
        self.state = ctx.guard_state or GuardState()
        self.output = output
        # Hold back only when a rule could still stop or rewrite the text (shadow rules only observe), so
        # the default chain keeps token-by-token streaming.
        active = any(g.mode != "shadow" for g in output)
        self.hold = cfg.hold_back_chars if active else 0
        # Only observers, nothing to restore or validate (the default chain): text passes through as it
        # comes, and the rules look at it every SHADOW_EVERY characters (``_observe``).
        self.observing = not active and self.state.schema is None and not self.state.mapping
        self.window = cfg.window_chars
        self.lanes: dict[int, _Lane] = {}

    async def _check(self, lane: _Lane, final: bool) -> str | None:
        """Run the output guardrails on window + pending; returns the blocking rule, if any."""
        text = ""  # built when a rule runs (most chunks run none: shadow rules run every SHADOW_EVERY)
        shadow_due = final or lane.unseen >= SHADOW_EVERY
        for g in self.output:
            if g.mode == "shadow" and (not shadow_due or g.name in lane.fired):
                continue
            text = text or lane.tail + lane.pending
            if g.mode == "shadow":
                verdict = await self.run_guard(g, "stream", [Message("assistant", text)], self.ctx)
                if not isinstance(verdict, Block | Redact):
                    continue
                lane.fired.add(g.name)
                continue
            verdict = await self.run_guard(g, "stream", [Message("assistant", text)], self.ctx)
            if isinstance(verdict, Block):
                self.ctx.guardrail_blocked = g.name
                return g.name
            if isinstance(verdict, Redact):
                # Only the unreleased part can still be rewritten: redact it on its own.
                again = await g.check([Message("assistant", lane.pending)], self.ctx)
                if isinstance(again, Redact) and again.messages:
                    lane.pending = again.messages[0].text()
        if shadow_due:
            lane.unseen = 0
        return None

    def _release(self, lane: _Lane, final: bool) -> str:
        if self.state.schema is not None and not final:
            return ""  # the whole answer must be validated before any of it is released
        cut = len(lane.pending) if final else max(0, len(lane.pending) - self.hold)
        if not final and self.state.mapping:  # placeholders to restore: never release half of one
            m = _OPEN_PLACEHOLDER.search(lane.pending[:cut])
            if m is not None:
                cut = m.start()  # never split a placeholder: restore needs it whole
        out, lane.pending = lane.pending[:cut], lane.pending[cut:]
        lane.tail = (lane.tail + out)[-self.window :]
        return restore(out, self.state.mapping)

    def _validate(self, lane: _Lane) -> None:
        assert self.state.schema is not None
        err = schema_errors(lane.pending, self.state.schema)
        if err is not None:
            if self.ctx.guardrail_events is None:
                self.ctx.guardrail_events = []
            self.ctx.guardrail_events.append(("json_schema", "block"))
            raise ResponseSchemaMismatch(
                f"The model's answer does not match the requested json_schema: {err} "
                "(streamed answers are validated whole and cannot be repaired)"
            )

    async def _observe(self, ch: ChunkChoice) -> None:
        """``run`` for a chain of observers only: the same checks at the same points, the text unchanged."""
        lane = self.lanes.get(ch.index)
        if lane is None:
            lane = self.lanes[ch.index] = _Lane()
        text = ch.delta.content
        final = ch.finish_reason is not None
        if text:
            lane.pending = text
            lane.unseen += len(text)
        if lane.unseen >= SHADOW_EVERY or (final and lane.unseen > 0):
            await self._check(lane, final)  # observers never block
        if text:
            lane.tail = (lane.tail + text)[-self.window :]
            lane.pending = ""

    @staticmethod
    def _filtered(chunk: ChatChunk, index: int) -> ChatChunk:
        return ChatChunk(
            id=chunk.id,
            model=chunk.model,
            choices=[ChunkChoice(index, Delta(content=""), "content_filter")],
            created=chunk.created,
        )

    async def run(self) -> AsyncIterator[ChatChunk]:
        if self.observing:
            async for chunk in self.chunks:
                for ch in chunk.choices:
                    await self._observe(ch)
                yield chunk
            return
        async for chunk in self.chunks:
            for ch in chunk.choices:
                lane = self.lanes.setdefault(ch.index, _Lane())
                final = ch.finish_reason is not None
                if ch.delta.content:
                    lane.pending += ch.delta.content
                    lane.unseen += len(ch.delta.content)
                if not lane.pending and not final:
                    continue
                # With a schema nothing is released before the end, so the end is the one check needed.
                due = lane.pending and (final or self.state.schema is None)
                # The last chunk usually carries no text: the observers still owe the text since their
                # last look (up to SHADOW_EVERY characters) a look.
                due = due or (final and lane.unseen > 0)
                blocked = await self._check(lane, final) if due else None
                if blocked is not None:
                    self.ctx.finish_reason = "content_filter"
                    yield self._filtered(chunk, ch.index)
                    return
                if final and self.state.schema is not None:
                    self._validate(lane)
                released = self._release(lane, final)
                if ch.delta.content is not None or released:
                    ch.delta.content = released
            yield chunk
