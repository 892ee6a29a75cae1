"""What a tool is: a name, a description, JSON-schema parameters, an executor, a timeout, a concurrency limit
and a permission scope. Executors return text for the model or raise ``ToolFailure`` (an error the model may
act on); anything else they raise is reported to the model as an internal tool error, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from tollhouse.types import Principal

Executor = Callable[[dict[str, Any]], Awaitable[str]]

# The caller of the tool being run (set by the loop around each call): tools whose answer depends on who
# asks, such as ``retrieve`` over the caller's own collections, read it.
CALLER: ContextVar[Principal] = ContextVar("tollhouse_tool_caller")


class ToolFailure(Exception):
    """A failure the model sees as a structured error: ``code`` (``invalid_arguments``, ``timeout``, …)
    and a message it can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Scope:
    """Who may use a tool: key ids and team names. Both empty: everyone."""

    keys: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()

    def allows(self, principal: Principal) -> bool:
        if not self.keys and not self.teams:
            return True
        return (principal.key_id is not None and principal.key_id in self.keys) or (
            principal.team is not None and principal.team in self.teams
        )


@dataclass(slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Executor
    timeout_s: float = 10.0
    concurrency: int = 8
    scope: Scope = field(default_factory=Scope)
    source: str = "builtin"  # builtin | http | mcp:<server> | whoever registered it
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    _validator: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        jsonschema.Draft202012Validator.check_schema(self.parameters)
        self._validator = jsonschema.Draft202012Validator(self.parameters)

    @property
    def slots(self) -> asyncio.Semaphore:
        # Built lazily: a Tool may be made before the event loop runs.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    def check(self, args: Any) -> None:
        """Raise ``ToolFailure('invalid_arguments')`` naming the first problem."""
        if not isinstance(args, dict):
            raise ToolFailure("invalid_arguments", "arguments must be a JSON object")
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(args))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ToolFailure("invalid_arguments", f"{where}: {error.message}")

    def definition(self) -> dict[str, Any]:
        """The OpenAI function definition the model is shown."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}
