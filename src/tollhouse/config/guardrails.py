"""The `guardrails:` section: which checks run, in which mode, per key and per model (issue 6)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tollhouse.config.base import Strict

RuleName = Literal[
    "limits",
    "injection",
    "pii",
    "dangerous_commands",
    "unsafe_content",
    "json_schema",
    "secret_leak",
    "prompt_leak",
]


class RuleEntry(Strict):
    """One guardrail in a chain."""

    rule: RuleName = Field(description="Which check.")
    mode: Literal["enforce", "redact", "shadow"] = Field(
        "enforce",
        description="`enforce` blocks, `redact` rewrites and continues, `shadow` only logs and counts.",
    )


def _default_input() -> list[RuleEntry]:
    return [RuleEntry(rule="limits"), RuleEntry(rule="pii", mode="redact"), RuleEntry(rule="injection")]


def _default_output() -> list[RuleEntry]:
    return [
        RuleEntry(rule="dangerous_commands", mode="shadow"),
        RuleEntry(rule="unsafe_content", mode="shadow"),
        RuleEntry(rule="pii", mode="shadow"),
        RuleEntry(rule="secret_leak"),
        RuleEntry(rule="json_schema"),
    ]


class GuardLimits(Strict):
    """Request limits checked before any provider call."""

    max_input_tokens: int | None = Field(None, gt=0, description="Largest prompt (estimated tokens).")
    max_messages: int | None = Field(None, gt=0, description="Most messages in one request.")
    max_output_tokens: int | None = Field(
        None, gt=0, description="Largest `max_tokens` a caller may ask for."
    )
    allowed_tools: list[str] | None = Field(None, description="Tool (function) names a request may declare.")


class ChainOverride(Strict):
    """A different chain for some keys or models; the first matching override wins."""

    keys: list[str] = Field(default_factory=list, description="API key ids this applies to (empty: any).")
    models: list[str] = Field(default_factory=list, description="Requested model names (empty: any).")
    input: list[RuleEntry] | None = Field(None, description="Input chain (None: the default one).")
    output: list[RuleEntry] | None = Field(None, description="Output chain (None: the default one).")
    limits: GuardLimits | None = Field(None, description="Limits (None: the default ones).")


class InjectionSettings(Strict):
    """Prompt-injection detector (rules → cheap joint model → optional embedding classifier)."""

    classifier: bool = Field(
        False,
        description="Also re-score prompts in the cheap model's uncertain band with the embedded encoder: "
        "~10-100 ms of CPU for those prompts (off the event loop). On the shared dev set it lowers "
        "recall, so it is off (docs/GUARDRAILS.md).",
    )
    roles: list[str] = Field(
        ["user", "tool"],
        description="Message roles checked; `tool` results count as indirect injection.",
    )
    max_chars: int = Field(8000, gt=0, description="Characters of each message checked.")


class PIISettings(Strict):
    """PII detection and masking."""

    entities: list[
        Literal[
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "US_SSN",
            "IP_ADDRESS",
            "STREET_ADDRESS",
            "SECRET",
        ]
    ] = Field(
        [
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "US_SSN",
            "IP_ADDRESS",
            "STREET_ADDRESS",
            "SECRET",
        ],
        description="Entity types detected (figures and limits of each: docs/GUARDRAILS.md).",
    )
    reversible: bool = Field(
        True, description="Restore placeholders in the answer (off: irreversible anonymisation)."
    )
    ner: bool = Field(
        False,
        description="Also detect PERSON / LOCATION / ORGANIZATION with an installed spaCy model "
        "(`pip install 'tollhouse[ner]'`; ~5 ms per text in a worker thread). Startup fails if it is "
        "not installed.",
    )


class ModerationSettings(Strict):
    """The `unsafe_content` rule: lexical phrases, then an offline classifier."""

    classifier: bool = Field(
        False,
        description="Run the offline classifier after the lexical phrases (the sentence encoder plus a cheap "
        "model: a few ms of CPU per answer, in a worker thread). Off (the default, as the rule is shadow by "
        "default and the classifier too weak to enforce): phrases only. Turn it on to measure it in shadow "
        "on your traffic, or to enforce it where its false positives are acceptable (docs/GUARDRAILS.md).",
    )


class LeakSettings(Strict):
    """What the `secret_leak` and `prompt_leak` output rules protect (docs/GUARDRAILS.md)."""

    secrets: list[str] = Field(
        default_factory=list,
        description="Strings no answer may show (as written, spelled out, reversed or as an acrostic), on "
        "every request, besides the secrets a system prompt declares.",
    )
    detect_secrets: bool = Field(
        True,
        description='Protect the secrets a system / developer message declares ("The password is COCOLOCO", '
        "\"secret word: 'tulip'\"; a value is taken when it is quoted or holds a capital or a digit).",
    )
    min_words: int = Field(
        12,
        ge=5,
        le=100,
        description="`prompt_leak`: consecutive words of the system prompt (outside its quoted passages) an "
        "answer may not repeat.",
    )

    @field_validator("secrets")
    @classmethod
    def _long_enough(cls, v: list[str]) -> list[str]:
        for s in v:
            if sum(c.isalnum() for c in s) < 3:
                raise ValueError(f"secret {s!r} has fewer than 3 letters or digits: it would match by chance")
        return v


class StreamGuardSettings(Strict):
    """Streamed answers are checked on a sliding window; text is held back until checked."""

    hold_back_chars: int = Field(
        64,
        ge=0,
        description="Characters held back so a pattern split across chunks is seen whole before release.",
    )
    window_chars: int = Field(
        512, gt=0, description="Characters of already-released text re-checked with new text."
    )


class GuardrailSettings(Strict):
    """Guardrails on every request — chat, completions, embeddings; streamed or not (docs/GUARDRAILS.md)."""

    enabled: bool = Field(True, description="Run guardrails.")
    input: list[RuleEntry] = Field(default_factory=_default_input, description="Input chain, in order.")
    output: list[RuleEntry] = Field(default_factory=_default_output, description="Output chain, in order.")
    limits: GuardLimits = Field(default_factory=GuardLimits, description="Request limits.")
    overrides: list[ChainOverride] = Field(default_factory=list, description="Per key / model chains.")
    injection: InjectionSettings = Field(default_factory=InjectionSettings, description="Injection detector.")
    pii: PIISettings = Field(default_factory=PIISettings, description="PII.")
    moderation: ModerationSettings = Field(
        default_factory=ModerationSettings, description="Unsafe-content classifier."
    )
    leak: LeakSettings = Field(
        default_factory=LeakSettings, description="Secrets and system-prompt words kept out of answers."
    )
    stream: StreamGuardSettings = Field(default_factory=StreamGuardSettings, description="Streams.")
    dangerous_patterns: list[str] = Field(
        default_factory=list, description="Extra regexes for the `dangerous_commands` rule."
    )
