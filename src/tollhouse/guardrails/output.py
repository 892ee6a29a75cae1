"""Output checks: dangerous commands / code patterns, unsafe-content lexical rules, JSON-schema validation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Verdict
from tollhouse.types import ChatRequest, ChatResponse, Message, Raw, RequestContext, ResponseFormat

# A pattern with the literals any match of it must contain: ``needs`` is a list of groups, and every group
# must have one of its literals in the folded text (``_fold``) or the regex pass is skipped. Ordinary
# answers hold almost none of them, so most checks cost one ``casefold`` and a few substring searches
# instead of a regex pass per pattern (~130 ns a character each before). A plain string: always run.
Needs = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Pattern:
    regex: str
    needs: Needs = ()


DANGEROUS: list[Pattern | str] = [
    Pattern(r"\bdrop\s+(table|database|schema)\b", (("drop",),)),
    Pattern(r"\brm\s+-[a-z]*r[a-z]*f?[a-z]*\s+(/|~|\*|\$HOME)(\s|$|\*)", (("rm",), ("-",))),
    Pattern(r"\bchmod\s+(-R\s+)?777\b", (("chmod",), ("777",))),
    Pattern(r"\bexec\s*\(", (("exec",), ("(",))),
    Pattern(r"\b__import__\s*\(", (("__import__",),)),
    Pattern(r"\bmkfs(\.\w+)?\s+/dev/", (("mkfs",), ("/dev/",))),
    Pattern(r"\bdd\s+if=\S+\s+of=/dev/(sd|nvme|hd)", (("dd",), ("if=",), ("of=/dev/",))),
    Pattern(r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:", ((":(",), ("|",), ("&",))),
    Pattern(r"\b(curl|wget)\b[^\n|]{0,200}\|\s*(sudo\s+)?(ba|z)?sh\b", (("curl", "wget"), ("|",), ("sh",))),
    Pattern(r"\bos\.system\s*\(", (("os.system",),)),
    Pattern(r"\btruncate\s+table\b", (("truncate",), ("table",))),
]

# Unsafe-content categories: short, high-precision phrases (the lexical layer before the classifier).
UNSAFE: dict[str, list[Pattern | str]] = {
    "self-harm": [
        Pattern(
            r"\b(how to|ways to|best way to|methods? (of|for|to))\s+(kill|hurt|harm) "
            r"(yourself|myself|oneself)\b",
            (("kill", "hurt", "harm"), ("self",)),
        ),
        Pattern(r"\byou should (kill|hurt) yourself\b", (("you should",), ("yourself",))),
        Pattern(r"\b(kys|go die)\b", (("kys", "go die"),)),
    ],
    "violence": [
        Pattern(
            r"\b(how to|instructions (for|to)) (make|build) (a )?(bomb|pipe bomb|explosive|nerve agent)\b",
            (("bomb", "explosive", "nerve agent"),),
        ),
        Pattern(
            r"\bi (will|am going to|'m going to) (kill|murder|shoot|stab) (you|him|her|them)\b",
            (("kill", "murder", "shoot", "stab"),),
        ),
    ],
    "sexual/minors": [
        Pattern(
            r"\b(sex|sexual|nude|porn)\w*\b.{0,40}\b(child|children|minor|minors|kid|kids|underage)\b",
            (("sex", "nude", "porn"), ("child", "minor", "kid", "underage")),
        )
    ],
    "hate": [
        Pattern(
            r"\b(all|those) (\w+ )?(people|immigrants|jews|muslims|blacks|gays) "
            r"(should|must) (die|be killed)\b",
            (("should", "must"), ("die", "killed")),
        )
    ],
}

# What ``re.IGNORECASE`` matches to an ASCII letter, ``str.casefold`` maps to it too, except the Turkish
# dotted and dotless i (U+0130 folds to "i" + a combining dot, U+0131 stays itself): both become "i".
_FOLD_I = str.maketrans({"\u0131": "i", "\u0307": None})


def _fold(text: str) -> str:
    return text.casefold().translate(_FOLD_I)


def _has(folded: str, needs: Needs) -> bool:
    for group in needs:  # plain loops: all() / any() over generators cost more than the searches here
        for k in group:
            if k in folded:
                break
        else:
            return False
    return True


class PatternGuard:
    """Blocks (or logs) text matching any of a list of regexes; ``label`` names the category found."""

    cost = 2

    def __init__(
        self, name: str, mode: Mode, patterns: dict[str, list[Pattern | str]], phases: frozenset[Phase]
    ) -> None:
        self.name = name
        self.mode = mode
        self.phases = phases
        self._pats: list[tuple[str, re.Pattern[str], Needs]] = []
        for label, ps in patterns.items():
            for p in ps:
                spec = p if isinstance(p, Pattern) else Pattern(p)
                self._pats.append((label, re.compile(spec.regex, re.IGNORECASE), spec.needs))

    def find(self, text: str) -> str | None:
        folded: str | None = None
        for label, pat, needs in self._pats:
            if needs:
                if folded is None:
                    folded = _fold(text)
                if not _has(folded, needs):
                    continue
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
    """The built-in patterns plus the configured ``extra`` regexes (always run: no literals known)."""
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
