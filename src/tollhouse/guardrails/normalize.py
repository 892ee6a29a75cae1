# ruff: noqa: RUF001  (the confusables table maps look-alike letters on purpose)
"""Text normalisation before injection checks: undo the tricks used to slip past keyword rules.

NFKC (full-width and compatibility forms), Unicode confusables (Cyrillic / Greek look-alikes), zero-width and
soft-hyphen removal, case folding, spaced-out letters (``i g n o r e``), leetspeak inside words, collapsed
whitespace; plus the decoded text of base64 payloads. ROT13 is checked by the rules on ``rot13(text)``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

# Look-alikes NFKC leaves alone (Cyrillic, Greek, a few symbols) → Latin.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m",
        "н": "h", "о": "o", "р": "p", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ԛ": "q",
        "ԝ": "w", "ӏ": "l", "А": "a", "В": "b", "С": "c", "Е": "e", "Н": "h", "І": "i", "К": "k",
        "М": "m", "О": "o", "Р": "p", "Ѕ": "s", "Т": "t", "Х": "x", "α": "a", "β": "b", "ε": "e",
        "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "Α": "a",
        "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
        "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "ɡ": "g", "ı": "i", "ℓ": "l",
    }
)  # fmt: skip
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
     0xFEFF],
)  # fmt: skip
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_LEET_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9@$!])[a-z0-9@$!]{3,}\b")
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){3,}[a-z]\b")
_WS = re.compile(r"\s+")
_B64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def normalise(text: str) -> str:
    """The canonical form rules and the classifier see (lower case, one space between words)."""
    t = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_CONFUSABLES).casefold()
    t = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), t)
    t = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), t)
    return _WS.sub(" ", t).strip()


def decoded_payloads(text: str, limit: int = 4) -> list[str]:
    """Printable text hidden in base64 runs (at most ``limit``), normalised."""
    out: list[str] = []
    for m in _B64.finditer(text):
        raw = m.group(0)
        try:
            data = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            s = data.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if s and sum(c.isprintable() or c.isspace() for c in s) / len(s) > 0.95 and " " in s:
            out.append(normalise(s))
            if len(out) >= limit:
                break
    return out


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")
