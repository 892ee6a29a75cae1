"""Generated training data for the injection detectors: the failure kinds the dev set under-represents.

Every generator draws from template families written for the gateway (``synthetic_prompts.py``,
``synthetic_documents.py``; never derived from an evaluation set) and is deterministic for a seed. Each
family belongs to one of ``FOLDS`` folds (the j-th family of a kind to fold j mod ``FOLDS``); a ``Split``
names the folds to draw from, so the evaluation fits on some folds' families and scores the others' — its
figures on generated data measure phrasings the model never saw, not memorised templates (ADR 0030).

Direct prompts (``direct``): curt task switches and hijacks, requests for the hidden instructions worded as
ordinary tasks, a password game's secret, each misspelled or obfuscated a third of the time (label 1);
role-play, fiction, games, trigger words in ordinary sentences, harmless task switches, requests about
pasted text (0). Surface frames ("pls", "thx", curt lower case) go on both. Documents and tool results
(``documents``): emails, web pages, search results, reviews and chat exports, every other one with a line
addressed to the assistant inside.
"""

from __future__ import annotations

import random

from tollhouse.evals.obfuscate import frame, obfuscate, typo
from tollhouse.evals.synthetic_documents import CARRIERS, CONTENT_FAMILIES, EMBEDDED_FAMILIES, boilerplate
from tollhouse.evals.synthetic_prompts import ATTACK_FAMILIES, BENIGN_FAMILIES
from tollhouse.evals.synthetic_slots import Family, fill

FOLDS = 5
Split = frozenset[int] | None  # the family folds to draw from; None: all of them
ATTACK_KINDS = ("hijack", "extraction", "secret", "typo")
BENIGN_KINDS = ("roleplay", "trigger", "switch", "pasted")


def fold_of(families: list[Family]) -> list[int]:
    """Each family's fold: the j-th family of its kind goes to fold j mod FOLDS."""
    seen: dict[str, int] = {}
    out = []
    for f in families:
        out.append(seen.get(f.kind, 0) % FOLDS)
        seen[f.kind] = seen.get(f.kind, 0) + 1
    return out


def only(fold: int) -> frozenset[int]:
    return frozenset({fold})


def all_but(fold: int) -> frozenset[int]:
    return frozenset(range(FOLDS)) - {fold}


def pool(families: list[Family], split: Split) -> list[Family]:
    folds = fold_of(families)
    return [f for f, k in zip(families, folds, strict=True) if split is None or k in split]


def direct(n: int, seed: int = 0, split: Split = None) -> tuple[list[str], list[int], list[str]]:
    """``n`` distinct generated direct prompts, half attacks, half benign; with each one's kind (the
    family's, or ``typo`` for a misspelled / obfuscated attack)."""
    rng = random.Random(seed)
    attacks, benign = pool(ATTACK_FAMILIES, split), pool(BENIGN_FAMILIES, split)
    seen: dict[str, tuple[int, str]] = {}
    tries = 0
    while len(seen) < n and tries < n * 50 and attacks and benign:
        tries += 1
        label = len(seen) % 2
        fam = rng.choice(attacks if label else benign)
        text = frame(rng, fill(rng, rng.choice(fam.templates)))
        kind = fam.kind
        r = rng.random()
        if label and r < 0.35:
            text, kind = (typo(rng, text) if r < 0.2 else obfuscate(rng, text)), "typo"
        elif not label and r < 0.2:
            text = (
                typo(rng, text, 0.05) if r < 0.15 else obfuscate(rng, text)
            )  # benign prompts have typos too
        seen.setdefault(text, (label, kind))
    return list(seen), [v[0] for v in seen.values()], [v[1] for v in seen.values()]


def documents(n: int, seed: int = 0, split: Split = None) -> tuple[list[str], list[int], list[str]]:
    """``n`` documents (every other one with an injected line, misspelled a fifth of the time); with the
    injected line alone ("" for a benign document)."""
    rng = random.Random(seed)
    content, embedded = pool(CONTENT_FAMILIES, split), pool(EMBEDDED_FAMILIES, split)
    texts: list[str] = []
    labels: list[int] = []
    lines: list[str] = []
    for i in range(n):
        body = [fill(rng, rng.choice(rng.choice(content).templates)) for _ in range(rng.randint(2, 5))]
        line = ""
        if i % 2:
            line = fill(rng, rng.choice(rng.choice(embedded).templates))
            if rng.random() < 0.2:
                line = typo(rng, line)
            body.insert(rng.randint(0, len(body)), line)
        texts.append(rng.choice(CARRIERS)(rng, body))
        labels.append(int(bool(line)))
        lines.append(line)
    return texts, labels, lines


def benign_lines(n: int, seed: int = 0, split: Split = None) -> list[str]:
    """Single lines of ordinary content (negatives for the document model's windows)."""
    rng = random.Random(seed)
    content = pool(CONTENT_FAMILIES, split)
    out = [
        boilerplate(rng) if rng.random() < 0.2 else fill(rng, rng.choice(rng.choice(content).templates))
        for _ in range(n)
    ]
    return list(dict.fromkeys(out))
