"""The Guardrail protocol and its verdicts (shared/DESIGN.md §3).

A guardrail looks at messages and answers ``Allow``, ``Block(reason)`` or ``Redact(messages, mapping)``. Its
mode (enforce / redact / shadow) is set in config; the chain applies it (a shadow verdict is only logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from tollhouse.types import Message, RequestContext

Phase = Literal["input", "output", "stream"]
Mode = Literal["enforce", "redact", "shadow"]


@dataclass(slots=True, frozen=True)
class Allow:
    """Nothing found."""


@dataclass(slots=True, frozen=True)
class Block:
    """Refuse. ``reason`` is a short category safe to show a client (never the offending text)."""

    reason: str


@dataclass(slots=True)
class Redact:
    """Continue with ``messages`` instead; ``mapping`` (placeholder → original) restores the answer."""

    messages: list[Message]
    mapping: dict[str, str] = field(default_factory=dict)
    reason: str = "redacted"


Verdict = Allow | Block | Redact
ALLOW = Allow()


class Guardrail(Protocol):
    """One check. ``cost`` orders the chain (cheap first); ``check`` must not block the event loop for
    more than ~1 ms (CPU work beyond that goes to a worker thread) and must not log message text."""

    name: str
    phases: frozenset[Phase]
    mode: Mode
    cost: int

    async def check(self, messages: list[Message], ctx: RequestContext) -> Verdict: ...


@dataclass(slots=True, frozen=True)
class Decision:
    """One verdict as logged and recorded: rule, phase, mode, outcome, latency."""

    rule: str
    phase: Phase
    mode: Mode
    outcome: str  # allow | block | redact | shadow_block | shadow_redact
    latency_ms: float
    reason: str | None = None
