"""PII detection (regex + checksums) and reversible masking.

Entities: EMAIL_ADDRESS, PHONE_NUMBER (structure and context: ``guardrails/phones.py``), CREDIT_CARD (Luhn),
IBAN_CODE (any case, mod-97 and the country's length), US_SSN, IP_ADDRESS (v4 / v6), STREET_ADDRESS
(``guardrails/addresses.py``), SECRET (common API-key formats and high-entropy tokens); opt-in,
PERSON / LOCATION / ORGANIZATION from an installed NER model (``guardrails/ner.py``). Masking replaces each
value by a placeholder such as ``<EMAIL_ADDRESS_1>``; the mapping lives only on the request's chain state.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tollhouse.guardrails import addresses, phones
from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Redact, Verdict
from tollhouse.types import ContentPart, Message, RequestContext, TextPart

OFFLOOP_CHARS = 3000  # longer inputs are scanned in a worker thread
ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "STREET_ADDRESS",
    "SECRET",
)
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
# A PEM private key (header to footer when both are there) starts with "-": no word boundary before it.
_SECRET = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|"
    r"xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=:,\-\s]{0,12000}?-----END [A-Z ]*PRIVATE KEY-----)?"
)
_TOKEN = re.compile(r"\b[A-Za-z0-9_\-+/]{24,}={0,2}")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,32}")
# IBAN length per country (ISO 13616 registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
_CARD = re.compile(r"(?<![+\d])\b\d(?:[ \-]?\d){11,18}\b")  # 12-19 digits; "+44…" is a phone
# Issuer prefixes (ISO/IEC 7812): Visa 4, Mastercard 51-55 / 2221-2720, Mir 2200-2204, Amex 34 / 37, Diners
# 30 / 36 / 38 / 39, JCB 35 / 1800 / 2131, Discover / UnionPay / Maestro 50 / 56-69. Timestamps (17…),
# tracking numbers (94…) and most ids start otherwise.
_CARD_ISSUER = re.compile(r"4|5|6|3[045678]|39|2[2-7]|1800|2131")
# A country code right before ("+43 6481 36520 935" is a phone), or an identifier's name: EAN / ISBN
# barcodes, tracking and order numbers pass Luhn one time in ten.
_NOT_CARD = re.compile(
    r"(?:\+\d{1,3}[ .\-]?|\b(?:ean|gtin|isbn|upc|barcode|tracking|parcel|shipment|order|invoice|ref|"
    r"reference|ticket|account id|customer id|serial|imei|timestamp|ts)\b[^\n\d]{0,12})$",
    re.I,
)
_MAESTRO = re.compile(r"5[06-9]|6")  # the only cards shorter than 13 digits
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
# Four dotted octets, not part of a longer dotted run (``01.84.17.61.18`` is a phone number).
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\.?\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])")
_DIGIT = re.compile(r"\d")
_DOTTED = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")  # a cheap test before the IPv4 pattern
PLACEHOLDER = re.compile(
    r"<(?:EMAIL_ADDRESS|PHONE_NUMBER|CREDIT_CARD|IBAN_CODE|US_SSN|IP_ADDRESS|STREET_ADDRESS|SECRET|PERSON|"
    r"LOCATION|ORGANIZATION)_\d+>"
)


@dataclass(slots=True, frozen=True)
class Span:
    start: int
    end: int
    entity: str


class SpanFinder(Protocol):
    """An extra detector (the NER one): spans of one text."""

    def spans(self, text: str) -> list[Span]: ...


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(s: str) -> bool:
    """A registered country, its length and the mod-97 checksum (any case, spaces or dashes)."""
    s = s.replace(" ", "").replace("-", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _high_entropy(tok: str) -> bool:
    classes = sum(
        [any(c.islower() for c in tok), any(c.isupper() for c in tok), any(c.isdigit() for c in tok)]
    )
    return classes == 3 and _entropy(tok) >= 4.0


def detect(
    text: str, entities: frozenset[str] = frozenset(ENTITIES), ner: SpanFinder | None = None
) -> list[Span]:
    """Non-overlapping spans, most specific first (secrets, emails, IBANs, cards, SSNs, IPs, street
    addresses, phones, then the NER detector's names / locations / organisations)."""
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, entity: str) -> None:
        if entity in entities and all(end <= a or start >= b for a, b in taken):
            spans.append(Span(start, end, entity))
            taken.append((start, end))

    if _may_hold_secret(text):
        for m in _SECRET.finditer(text):
            add(m.start(), m.end(), "SECRET")
    if "@" in text:
        for m in _EMAIL.finditer(text):
            add(m.start(), m.end(), "EMAIL_ADDRESS")
    for m in _TOKEN.finditer(text):
        if _high_entropy(m.group(0)):
            add(m.start(), m.end(), "SECRET")
    if ":" in text:
        for m in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group(0))
            except ValueError:
                continue
            add(m.start(), m.end(), "IP_ADDRESS")
    if not _has_digit(text):  # every other type has digits; most prose has none (~1 ms saved per 4 kB)
        if "STREET_ADDRESS" in entities and "orner of" in text:  # "the corner of X Street and Y Road"
            for start, end in addresses.find(text):
                add(start, end, "STREET_ADDRESS")
        return _finish(spans, ner, text, add)
    for m in _IBAN.finditer(text):
        stop = _iban_end(text, m.start(), m.end())
        if stop is not None:
            add(m.start(), stop, "IBAN_CODE")
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        n = len(digits)
        if (
            12 <= n <= 19
            and _CARD_ISSUER.match(digits)
            and (n > 12 or _MAESTRO.match(digits))
            and luhn(digits)
            and not _NOT_CARD.search(text[max(0, m.start() - 24) : m.start()])
        ):
            add(m.start(), m.end(), "CREDIT_CARD")
    for m in _SSN.finditer(text):
        add(m.start(), m.end(), "US_SSN")
    if _DOTTED.search(text) is not None:
        for m in _IPV4.finditer(text):
            add(m.start(), m.end(), "IP_ADDRESS")
    if "STREET_ADDRESS" in entities:  # before phones: "224 4966 Bond Street" is not a phone number
        for start, end in addresses.find(text):
            add(start, end, "STREET_ADDRESS")
    if "PHONE_NUMBER" in entities:
        for m in phones.CANDIDATE.finditer(text):
            start, end = m.span()
            free = all(end <= a or start >= b for a, b in taken)  # inside an address, a card…: not checked
            if end - start >= 7 and free and phones.is_phone(text, start, end):
                add(start, end, "PHONE_NUMBER")
    return _finish(spans, ner, text, add)


def _may_hold_secret(text: str) -> bool:
    """Whether ``text`` holds a literal every ``_SECRET`` match starts with (case-sensitive, as the pattern
    is): substring searches cost a few percent of the pattern's own pass over prose."""
    return (
        "sk-" in text
        or "AKIA" in text
        or ("gh" in text and "_" in text)
        or "xox" in text
        or "AIza" in text
        or "eyJ" in text
        or "-----BEGIN " in text
    )


def _has_digit(text: str) -> bool:
    if text.isascii():  # a flag CPython keeps: then ``\d`` is 0-9, and ten substring searches beat the regex
        return any(d in text for d in "0123456789")
    return _DIGIT.search(text) is not None


def _iban_end(text: str, start: int, end: int) -> int | None:
    """Where the IBAN starting at ``start`` ends (the match may run on into the next word), if valid."""
    value = text[start:end]
    length = IBAN_LENGTHS.get(value[:2].upper())
    if length is None:
        return None
    n = 0
    for i, ch in enumerate(value):
        n += ch.isalnum()
        if n == length:
            stop = start + i + 1
            if stop < len(text) and text[stop].isalnum():
                return None  # glued to more letters or digits: not an IBAN
            return stop if iban_ok(text[start:stop]) else None
    return None


def _finish(
    spans: list[Span], ner: SpanFinder | None, text: str, add: Callable[[int, int, str], None]
) -> list[Span]:
    if ner is not None:
        for s in ner.spans(text):
            add(s.start, s.end, s.entity)
    spans.sort(key=lambda s: s.start)
    return spans


class Masker:
    """Reversible masking for one request: the same value always gets the same placeholder."""

    def __init__(self, *, labels_only: bool = False) -> None:
        self.labels_only = labels_only  # ``[EMAIL_ADDRESS]``: irreversible, never confused with a placeholder
        self.mapping: dict[str, str] = {}  # placeholder → original
        self._by_value: dict[str, str] = {}
        self._counts: Counter[str] = Counter()

    def mask(self, text: str, entities: frozenset[str], ner: SpanFinder | None = None) -> tuple[str, int]:
        spans = detect(text, entities, ner)
        if not spans:
            return text, 0
        out: list[str] = []
        pos = 0
        for s in spans:
            value = text[s.start : s.end]
            if self.labels_only:
                out += [text[pos : s.start], f"[{s.entity}]"]
                pos = s.end
                continue
            ph = self._by_value.get(value)
            if ph is None:
                self._counts[s.entity] += 1
                ph = f"<{s.entity}_{self._counts[s.entity]}>"
                self._by_value[value] = ph
                self.mapping[ph] = value
            out += [text[pos : s.start], ph]
            pos = s.end
        out.append(text[pos:])
        return "".join(out), len(spans)


def restore(text: str, mapping: dict[str, str]) -> str:
    if not mapping or "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)


def _with_text(m: Message, text: str | list[ContentPart]) -> Message:
    return Message(m.role, text, m.name, m.tool_calls, m.tool_call_id, m.extra)


class PIIGuard:
    """Input: mask PII (redact), refuse it (enforce) or count it (shadow). Output: PII leakage in the answer
    (values the caller did not send; restored placeholders are the caller's own and are not counted)."""

    name = "pii"
    cost = 5

    def __init__(
        self,
        mode: Mode,
        *,
        entities: frozenset[str],
        reversible: bool,
        phases: frozenset[Phase],
        ner: SpanFinder | None = None,
    ) -> None:
        self.mode = mode
        self.ner = ner
        self.entities = entities | frozenset(NER_ENTITIES) if ner is not None else entities
        self.reversible = reversible
        # In answers, leaked PII becomes ``[TYPE]``: a numbered placeholder could collide with the caller's
        # own placeholders and be "restored" to the caller's value.
        self.labels_only = "input" not in phases
        self.phases = phases

    def anonymising(self) -> PIIGuard:
        """The same rule for inputs whose values never come back (embeddings): redact means ``[TYPE]``."""
        g = PIIGuard(self.mode, entities=self.entities, reversible=False, phases=self.phases, ner=self.ner)
        g.labels_only = True
        return g

    async def check(self, messages: list[Message], ctx: RequestContext) -> Verdict:
        # > ~1 ms of regex work, or any NER (~5 ms): off the event loop
        if self.ner is not None or sum(len(m.text()) for m in messages) > OFFLOOP_CHARS:
            return await asyncio.to_thread(self._check, messages)
        return self._check(messages)

    def _check(self, messages: list[Message]) -> Verdict:
        masker = Masker(labels_only=self.labels_only)
        out: list[Message] = []
        found = 0
        for m in messages:
            if isinstance(m.content, str):
                text, n = masker.mask(m.content, self.entities, self.ner)
                found += n
                out.append(_with_text(m, text) if n else m)
            elif isinstance(m.content, list):
                parts: list[ContentPart] = []
                hits = 0
                for p in m.content:
                    if isinstance(p, TextPart):
                        text, n = masker.mask(p.text, self.entities, self.ner)
                        hits += n
                        p = TextPart(text, p.extra) if n else p
                    parts.append(p)
                found += hits
                out.append(_with_text(m, parts) if hits else m)
            else:
                out.append(m)
        if not found:
            return ALLOW
        if self.mode == "enforce":
            return Block("personal data (PII)")
        return Redact(out, masker.mapping if self.reversible else {}, reason="pii masked")
