"""Generated question pairs for training the semantic cache's pair verifier (build time only; seeded).

From seed questions it makes

* positives: question-word rephrasings ("How do I X?" / "What is the best way to X?"), synonym swaps,
  case / punctuation / typo noise, fillers ("Can anyone tell me …");
* hard negatives: an inserted negation, a changed number, a one-sided qualifier or modifier ("the next …",
  "… increasing …"), "X" / "non-X", a content word swapped for one from another question, another question
  word ("How …" / "Why …"), an antonym, two content words in swapped order.

``generate(questions, pairs, rng)`` returns ``(q1, q2, label)`` rows: for every seed question one rewrite and
one hard negative of itself, and for every duplicate seed pair a hard negative of its second question (a
paraphrase with a changed meaning is the hardest negative there is).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

Row = tuple[str, str, int]

_REPHRASE = [
    (
        r"^How do I (.+)\?$",
        [
            "How can I {0}?",
            "What is the best way to {0}?",
            "How should I {0}?",
            "What's the way to {0}?",
            "How would I {0}?",
        ],
    ),
    (
        r"^How can I (.+)\?$",
        [
            "How do I {0}?",
            "What is the best way to {0}?",
            "In what ways can I {0}?",
            "What should I do to {0}?",
        ],
    ),
    (r"^How can one (.+)\?$", ["How do you {0}?", "How can someone {0}?", "What is the way to {0}?"]),
    (r"^How do you (.+)\?$", ["How does one {0}?", "How can you {0}?", "What is the way to {0}?"]),
    (
        r"^What is (.+)\?$",
        ["What's {0}?", "What exactly is {0}?", "Can you explain what {0} is?", "What is meant by {0}?"],
    ),
    (r"^What are (.+)\?$", ["Which are {0}?", "What are some of {0}?", "Can you list {0}?", "Tell me {0}?"]),
    (
        r"^What are the best (.+)\?$",
        [
            "What are some of the best {0}?",
            "Which are the best {0}?",
            "What are the top {0}?",
            "What are good {0}?",
        ],
    ),
    (r"^Why do (.+)\?$", ["What is the reason {0}?", "Why is it that {0}?", "For what reason do {0}?"]),
    (r"^Why is (.+)\?$", ["What is the reason {0} is so?", "Why exactly is {0}?", "How come {0}?"]),
    (r"^Is it possible to (.+)\?$", ["Can I {0}?", "Is there a way to {0}?", "Can one {0}?"]),
    (r"^Can I (.+)\?$", ["Is it possible to {0}?", "Is there a way to {0}?", "Am I able to {0}?"]),
    (
        r"^Which is the best (.+)\?$",
        ["What is the best {0}?", "What's the best {0}?", "Which {0} is the best?"],
    ),
    (
        r"^What is the best way to (.+)\?$",
        ["How do I {0}?", "How can I {0}?", "What's the easiest way to {0}?"],
    ),
    (r"^What should I do to (.+)\?$", ["How can I {0}?", "How do I {0}?"]),
]
_SYNONYMS = [
    ("buy", "purchase"),
    ("begin", "start"),
    ("learn", "study"),
    ("job", "work"),
    ("improve", "enhance"),
    ("best", "top"),
    ("method", "way"),
    ("earn", "make"),
    ("money", "cash"),
    ("help", "assist"),
    ("quickly", "fast"),
    ("book", "novel"),
    ("film", "movie"),
    ("phone", "mobile"),
    ("car", "vehicle"),
    ("choose", "pick"),
    ("think", "believe"),
    ("show", "display"),
    ("end", "finish"),
    ("child", "kid"),
    ("children", "kids"),
    ("lose weight", "shed weight"),
    ("get rid of", "remove"),
    ("use", "utilize"),
    ("important", "significant"),
    ("difference", "distinction"),
    ("happen", "occur"),
    ("tell", "say"),
]
_FILLERS = [
    "Can anyone tell me: {0}",
    "Please help: {0}",
    "Quick question: {0}",
    "{0} Any ideas?",
    "I wonder, {0}",
]
_MODIFIERS = [
    "next",
    "only",
    "free",
    "first",
    "new",
    "used",
    "increasing",
    "sudden",
    "chronic",
    "early",
    "online",
    "private",
    "male",
    "female",
    "Indian",
    "American",
    "foreign",
    "old",
    "cheap",
    "best",
    "modern",
    "ancient",
    "digital",
    "legal",
    "small",
    "professional",
    "beginner",
    "local",
    "severe",
    "second",
]
_QWORDS = [
    ("How", "Why"),
    ("What", "Why"),
    ("Why", "When"),
    ("When", "Where"),
    ("Who", "Why"),
    ("Where", "How"),
]
_ANTONYMS = [
    ("more", "less"),
    ("increase", "decrease"),
    ("best", "worst"),
    ("better", "worse"),
    ("before", "after"),
    ("buy", "sell"),
    ("win", "lose"),
    ("high", "low"),
    ("higher", "lower"),
    ("rich", "poor"),
    ("easy", "hard"),
    ("start", "stop"),
    ("love", "hate"),
    ("advantages", "disadvantages"),
    ("pros", "cons"),
    ("fast", "slow"),
    ("men", "women"),
    ("boys", "girls"),
    ("import", "export"),
    ("old", "young"),
    ("gain", "lose"),
    ("positive", "negative"),
    ("legal", "illegal"),
    ("safe", "unsafe"),
    ("first", "last"),
    ("big", "small"),
]
_NEGATE = [
    (r"\b(is|are|was|were|can|should|does|do|did|will|would|could)\b", "{0} not"),
    (r"\b(can|does|do|did|should|would|could|is|are)\b", "{0}n't"),
]
_STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "about",
        "is",
        "are",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "i",
        "my",
        "me",
        "you",
        "your",
        "we",
        "our",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "can",
        "could",
        "should",
        "would",
        "will",
        "and",
        "or",
        "it",
        "its",
        "this",
        "that",
        "there",
        "their",
        "they",
        "best",
        "good",
        "way",
        "ways",
        "get",
        "make",
        "any",
        "some",
        "much",
        "many",
        "most",
        "more",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def _sub_word(text: str, old: str, new: str) -> str | None:
    pattern = re.compile(rf"\b{re.escape(old)}\b", re.IGNORECASE)
    if not pattern.search(text):
        return None
    return pattern.sub(new, text, count=1)


def rephrase(q: str, rng: random.Random) -> str | None:
    for pattern, outs in _REPHRASE:
        m = re.match(pattern, q.strip())
        if m:
            return rng.choice(outs).format(m.group(1))
    return None


def synonym(q: str, rng: random.Random) -> str | None:
    pairs = [(a, b) for a, b in _SYNONYMS] + [(b, a) for a, b in _SYNONYMS]
    rng.shuffle(pairs)
    for a, b in pairs:
        out = _sub_word(q, a, b)
        if out is not None:
            return out
    return None


def noise(q: str, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return q.lower()
    if kind == 1:
        return q.rstrip("?").rstrip()
    if kind == 2:
        return rng.choice(_FILLERS).format(q)
    words = q.split()
    long_ = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long_:
        return q.lower()
    i = rng.choice(long_)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def positive(q: str, rng: random.Random) -> str:
    for f in rng.sample([rephrase, synonym], 2):
        out = f(q, rng)
        if out is not None and out != q:
            return out if rng.random() < 0.7 else noise(out, rng)
    return noise(q, rng)


def _negation(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    pattern, repl = rng.choice(_NEGATE)
    m = re.search(pattern, q, re.IGNORECASE)
    if not m or re.search(r"\bnot\b|n't\b", q):
        return None
    return q[: m.start()] + repl.format(m.group(1)) + q[m.end() :]


def _number(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    m = re.search(r"\d+", q)
    if m:
        n = int(m.group())
        new = n + rng.choice([-2, -1, 1, 2, 10]) if n > 2 else n + rng.choice([1, 2, 3])
        return q[: m.start()] + str(new) + q[m.end() :]
    return None


def _modifier(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    spots = [m for m in re.finditer(r"\b(the|a|an|my|your|of|for|with|in|to)\s+(?=[a-z])", q)]
    if not spots:
        return None
    m = rng.choice(spots)
    word = rng.choice(_MODIFIERS)
    det = "a" if m.group(1) == "an" and word[0] not in "aeiou" else m.group(1)
    det = "an" if det == "a" and word[0] in "aeiou" else det
    return q[: m.start()] + f"{det} {word} " + q[m.end() :]


def _content(q: str) -> list[re.Match[str]]:
    return [m for m in _WORD.finditer(q) if m.group().lower() not in _STOP and len(m.group()) > 3]


def _non(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    words = _content(q)
    if not words:
        return None
    m = rng.choice(words)
    prefix = rng.choice(["non-", "non", "un", "anti-"])
    return q[: m.start()] + prefix + m.group().lower() + q[m.end() :]


def _swap_word(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    words = _content(q)
    other = _content(rng.choice(pool))
    if not words or not other:
        return None
    m, new = rng.choice(words), rng.choice(other).group()
    if new.lower() == m.group().lower():
        return None
    return q[: m.start()] + new + q[m.end() :]


def _qword(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    for a, b in rng.sample(_QWORDS, len(_QWORDS)):
        if q.startswith(a + " "):
            return b + q[len(a) :]
    return None


def _antonym(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    pairs = _ANTONYMS + [(b, a) for a, b in _ANTONYMS]
    rng.shuffle(pairs)
    for a, b in pairs:
        out = _sub_word(q, a, b)
        if out is not None:
            return out
    return None


def _order(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    words = _content(q)
    if len(words) < 2:
        return None
    i, j = sorted(rng.sample(range(len(words)), 2))
    a, b = words[i], words[j]
    return q[: a.start()] + b.group() + q[a.end() : b.start()] + a.group() + q[b.end() :]


NEGATIVES: list[Callable[[str, random.Random, Sequence[str]], str | None]] = [
    _negation,
    _number,
    _modifier,
    _modifier,
    _non,
    _swap_word,
    _swap_word,
    _qword,
    _antonym,
    _order,
]


def negative(q: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    for f in rng.sample(NEGATIVES, len(NEGATIVES)):
        out = f(q, rng, pool)
        if out is not None and out.lower() != q.lower():
            return out
    return None


def generate(
    questions: Sequence[str],
    dup_pairs: Sequence[tuple[str, str]],
    rng: random.Random,
    pool: Sequence[str] = (),
) -> list[Row]:
    """Rows from seed ``questions`` (a rewrite and a hard negative of each) and seed duplicate pairs (a hard
    negative of the second question against the first); ``pool`` (default: ``questions``) lends the words
    swapped in. Order of rows shuffled."""
    pool = pool or questions
    rows: list[Row] = []
    for q in questions:
        rows.append((q, positive(q, rng), 1))
        neg = negative(q, rng, pool)
        if neg is not None:
            rows.append((q, neg, 0))
    for q1, q2 in dup_pairs:
        neg = negative(q2, rng, pool)
        if neg is not None:
            rows.append((q1, neg, 0))
    rng.shuffle(rows)
    return rows
