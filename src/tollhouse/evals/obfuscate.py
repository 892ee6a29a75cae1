"""Surface operators for generated prompts: misspellings and obfuscation, and paraphrase frames.

Applied to attacks and benign texts alike (at different rates), so the model learns the wording, not the
noise: a typo or a "pls" says nothing about intent. Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random

_LEET = str.maketrans("oeaist", "034157")
_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def typo(rng: random.Random, text: str, rate: float = 0.08) -> str:
    """Misspell ``text``: swapped, dropped, doubled or mistyped letters, leetspeak or spaced-out letters."""
    out = []
    for w in text.split(" "):
        if len(w) > 3 and rng.random() < rate * 3:
            i = rng.randrange(1, len(w) - 2)
            kind = rng.randrange(6)
            if kind == 0:
                w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
            elif kind == 1:
                w = w[:i] + w[i + 1 :]
            elif kind == 2:
                w = w[:i] + w[i] + w[i:]
            elif kind == 3:
                w = w.translate(_LEET)
            elif kind == 4:
                w = " ".join(w)
            else:
                w = w[:i] + rng.choice(_KEYS) + w[i + 1 :]
        out.append(w)
    return " ".join(out)


def obfuscate(rng: random.Random, text: str) -> str:
    """One of the tricks used to slip past keyword filters, chosen at random."""
    kind = rng.randrange(6)
    words = text.split(" ")
    if kind == 0:  # leetspeak everywhere
        return text.translate(_LEET)
    if kind == 1:  # separators inside a few words
        sep = rng.choice([".", "-", "_", "*", " "])
        return " ".join(sep.join(w) if len(w) > 4 and rng.random() < 0.3 else w for w in words)
    if kind == 2:  # alternating case
        return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))
    if kind == 3:  # words run together
        return "".join(w if rng.random() < 0.5 else w + " " for w in words).strip()
    if kind == 4:  # heavy misspelling
        return typo(rng, text, 0.2)
    return "".join(c + "\u200b" if c.isalpha() and rng.random() < 0.2 else c for c in text)  # zero-width


_PREFIXES = ["", "", "", "", "ok ", "pls ", "hey, ", "Quick one: ", "Hi! ", "So, ", "Listen: ", "Hello. ",
             "Thanks for that. ", "One more thing: ", "btw ", "Important: ", "umm "]  # fmt: skip
_SUFFIXES = ["", "", "", "", " thx", " please", " asap", " :)", " Thanks!", " ok?", " right now",
             " No explanations.", " Be quick."]  # fmt: skip


def frame(rng: random.Random, text: str) -> str:
    """A chatty prefix or suffix, or the text made curt (lower case, no final punctuation)."""
    r = rng.random()
    if r < 0.15:
        return text.rstrip(".!").lower()
    if r < 0.6:
        return (rng.choice(_PREFIXES) + text + rng.choice(_SUFFIXES)).strip()
    return text
