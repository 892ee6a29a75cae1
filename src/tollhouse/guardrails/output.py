"""Output checks: dangerous commands / code patterns, unsafe-content lexical rules, JSON-schema validation."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Verdict
from tollhouse.types import ChatRequest, ChatResponse, Message, Raw, RequestContext, ResponseFormat

DANGEROUS = [
    r"\bdrop\s+(table|database|schema)\b",
    r"\brm\s+-[a-z]*r[a-z]*f?[a-z]*\s+(/|~|\*|\$HOME)(\s|$|\*)",
    r"\bchmod\s+(-R\s+)?777\b",
    r"\bexec\s*\(",
    r"\b__import__\s*\(",
    r"\bmkfs(\.\w+)?\s+/dev/",
    r"\bdd\s+if=\S+\s+of=/dev/(sd|nvme|hd)",
    r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:",
    r"\b(curl|wget)\b[^\n|]{0,200}\|\s*(sudo\s+)?(ba|z)?sh\b",
    r"\bos\.system\s*\(",
    r"\btruncate\s+table\b",
]

# Unsafe-content categories: short, high-precision phrases (the lexical layer before the classifier).
UNSAFE: dict[str, list[str]] = {
    "self-harm": [
        r"\b(how to|ways to|best way to|methods? (of|for|to))\s+(kill|hurt|harm) (yourself|myself|oneself)\b",
        r"\byou should (kill|hurt) yourself\b",
        r"\b(kys|go die)\b",
    ],
    "violence": [
        r"\b(how to|instructions (for|to)) (make|build) (a )?(bomb|pipe bomb|explosive|nerve agent)\b",
        r"\bi (will|am going to|'m going to) (kill|murder|shoot|stab) (you|him|her|them)\b",
    ],
    "sexual/minors": [
        r"\b(sex|sexual|nude|porn)\w*\b.{0,40}\b(child|children|minor|minors|kid|kids|underage)\b"
    ],
    "hate": [
        r"\b(all|those) (\w+ )?(people|immigrants|jews|muslims|blacks|gays) (should|must) (die|be killed)\b"
    ],
}


class PatternGuard:
    """Blocks (or logs) text matching any of a list of regexes; ``label`` names the category found."""

    cost = 2

    def __init__(
        self, name: str, mode: Mode, patterns: dict[str, list[str]], phases: frozenset[Phase]
    ) -> None:
        self.name = name
        self.mode = mode
        self.phases = phases
        self._pats = [(label, re.compile(p, re.IGNORECASE)) for label, ps in patterns.items() for p in ps]

    def find(self, text: str) -> str | None:
        for label, pat in self._pats:
            if pat.search(text):
                return label
        return None

    async def check(self, messages: list[Message], ctx: RequestContext) -> Verdict:
        for m in messages:
            label = self.find(m.text())
            if label is not None:
                return Block(label)
        return ALLOW


def dangerous_commands(mode: Mode, extra: list[str], phases: frozenset[Phase]) -> PatternGuard:
    return PatternGuard("dangerous_commands", mode, {"dangerous command": [*DANGEROUS, *extra]}, phases)


def response_schema(response_format: ResponseFormat | Raw | None) -> dict[str, Any] | None:
    """The JSON schema a request asked for (a ``json_schema`` response format that has a schema)."""
    if isinstance(response_format, ResponseFormat):
        return response_format.schema if response_format.type == "json_schema" else None
    # A json_schema format in a shape the vocabulary does not hold (say, extra keys): read it as JSON.
    rf = response_format.value if response_format is not None else None
    if not isinstance(rf, dict) or rf.get("type") != "json_schema":
        return None
    js = rf.get("json_schema")
    schema = js.get("schema") if isinstance(js, dict) else None
    return schema if isinstance(schema, dict) else None


def schema_errors(text: str, schema: dict[str, Any]) -> str | None:
    """None when ``text`` is JSON valid against ``schema``; else a short description of the first error."""
    import jsonschema  # type: ignore[import-untyped]

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})"
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"at {where}: {exc.message[:200]}"
    except jsonschema.SchemaError:
        return None  # the caller's schema is itself invalid: nothing to hold the answer to
    return None


def repair_request(req: ChatRequest, bad: ChatResponse, error: str) -> ChatRequest:
    """The one repair retry after an answer failed the requested ``json_schema``: the same request plus the
    model's answer and the validation error."""
    answer = bad.choices[0].message.text() if bad.choices else ""
    note = f"{error}\nReply again with only JSON that matches the schema."
    return replace(req, messages=[*req.messages, Message("assistant", answer), Message("user", note)])
