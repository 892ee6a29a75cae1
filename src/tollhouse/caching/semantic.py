"""The semantic cache index: (scope, final user message) → the exact-cache entry key of an answer that fits.
A hit needs cosine ≥ threshold between the embedded messages *and* the lexical match checks (``mismatch``):
embeddings rate "1994" and "1995", "can" and "can't", "Fresno" and "Mono County" as near-identical. The
in-process ``vectors.MemorySemanticIndex`` is the search engine of every backend (ADR 0009)."""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from tollhouse.caching.keys import fold

F32 = npt.NDArray[np.float32]
Backend = Literal["memory", "sqlite", "redis"]
log = logging.getLogger("tollhouse.cache")

ANN_MIN_ENTRIES = 20_000  # exact search over a scope this large costs ~1 ms; past it, HNSW


@dataclass(frozen=True, slots=True)
class SemanticScope:
    """Only entries of exactly this scope can answer: tenant, requested model and a hash of everything
    but the final user message (system prompt, tool schema, parameter class, prompt version)."""

    tenant: str
    model: str
    context: str


@dataclass(frozen=True, slots=True)
class SemanticHit:
    entry_key: str
    similarity: float


@dataclass(frozen=True, slots=True)
class SemanticConfig:
    """What ``build_semantic_index`` needs (the settings' ``cache.semantic`` section mirrors it)."""

    threshold: float = 0.9375  # calibrated by `tollhouse eval cache` for the int8 encoder (docs/QUALITY.md)
    checks: bool = True  # the lexical match checks; off raises false hits
    backend: Backend = "memory"
    sqlite_path: str = "tollhouse-cache.db"
    max_entries: int = 100_000  # per process, all scopes together; oldest evicted first
    ann_min_entries: int = ANN_MIN_ENTRIES  # scopes this large use HNSW (when hnswlib is installed)


class Embedder(Protocol):
    async def embed(self, text: str) -> F32:
        """The text's 1-D float32, L2-normalised vector. CPU work runs off the event loop."""
        ...


class SemanticIndex(Protocol):
    async def search(self, scope: SemanticScope, vector: F32, text: str) -> SemanticHit | None:
        """The most similar live entry of exactly ``scope`` with cosine ≥ threshold that passes the match
        checks against ``text``, or None. Raises on a backend error (callers treat it as a miss)."""
        ...

    async def add(
        self, scope: SemanticScope, vector: F32, text: str, entry_key: str, expires_at: float
    ) -> None:
        """Index an entry until ``expires_at`` (epoch seconds); replaces an entry with the same key or
        text in the scope. Raises on a backend error."""
        ...

    async def invalidate(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop the entries of this tenant and/or model (both None: all); returns how many were dropped
        here (shared backends propagate it to every process)."""
        ...

    def entries(self) -> int:
        """Entries held in this process (expired ones until the next purge included)."""
        ...

    async def start(self) -> None:
        """Open / load / subscribe. Raises when the backend cannot be reached."""
        ...

    async def aclose(self) -> None: ...


# ---- match checks -----------------------------------------------------------------------------------

CHECKS = (
    "numbers",
    "negation",
    "entities",
    "order",
    "antonyms",
    "rare_words",
    "negating_prefix",
    "qualifiers",
)
_ACRONYM = re.compile(r"\b(?:[A-Za-z]\.){2,}")  # U.S. → US
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*(?:\+\+|#)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _split(words: str) -> list[str]:
    return words.split()


_STOP = frozenset(
    _split(
        """a an the of in on at to for from by with about into onto over under as and or but if then so than
    is are was were be been being am do does did done doing have has had having will would shall should
    can could may might must i me my mine we us our ours you your yours he him his she her hers it its
    they them their theirs one ones someone anyone this that these those there here what which who whom
    whose when where why how some any all each every few many much more most other such own same very
    just also too only really ever please get gets got getting make makes made go goes going way ways
    thing things best good better s t re ve ll d m"""
    )
)
_NEGATION = frozenset(_split("not no never nothing nobody none neither nor cannot without nowhere"))
# Contractions typed without the apostrophe: negative ones read as "not", the others as stop words.
_BARE_NOT = frozenset(
    _split(
        "dont doesnt didnt cant couldnt wont wouldnt shouldnt isnt arent wasnt werent havent hasnt hadnt aint"
    )
)
_BARE_STOP = frozenset(_split("im ive youve youre youll theyre theyve weve whats thats theres hows whos"))
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)", re.IGNORECASE)
_COORDINATORS = frozenset(("and", "or", "vs", "versus", "with", "&"))
_ANTONYMS = [
    tuple(p.split("/"))
    for p in _split(
        """more/less more/fewer higher/lower high/low increase/decrease best/worst better/worse
    before/after male/female man/woman men/women boy/girl buy/sell pro/con advantage/disadvantage
    positive/negative win/lose rise/fall up/down old/new old/young big/small large/small cheap/expensive
    fast/slow hot/cold summer/winter true/false legal/illegal like/dislike love/hate start/stop open/close
    easy/hard easy/difficult strong/weak rich/poor early/late first/last husband/wife father/mother
    son/daughter brother/sister gain/lose north/south east/west left/right import/export input/output
    minimum/maximum min/max safe/dangerous safe/unsafe happy/sad day/night yesterday/tomorrow past/future
    inside/outside add/remove send/receive same/different similar/different"""
    )
]
# Prefixes that negate the word they attach to: "non-profit" / "profit", "unsafe" / "safe".
_NEG_PREFIX = re.compile(r"^(?:non|anti|un|in|im|il|ir|dis)-?(?=[a-z]{4})")
# Restricting qualifiers: present on one side only, they narrow the question to a case the other text does
# not ask about ("the next chief minister" / "the chief minister", "a second-hand car" / "a car").
_QUALIFIERS = frozenset(
    _split(
        """only next previous former current future new second-hand newest latest free paid cheap cheapest
    expensive specific particular private public online offline local foreign international domestic
    national severe mild chronic acute permanent temporary partial single married male female junior
    senior minor beginner advanced professional fake official legal illegal organic raw digital manual
    automatic electric wireless indoor outdoor young adult elderly teenage small large big tiny huge"""
    )
)
_OPPOSITE: dict[str, frozenset[str]] = {}
for _a, _b in _ANTONYMS:
    _OPPOSITE[_a] = _OPPOSITE.get(_a, frozenset()) | {_b}
    _OPPOSITE[_b] = _OPPOSITE.get(_b, frozenset()) | {_a}


def query_text(text: str) -> str:
    """The text that is embedded and checked: white space folded, ends trimmed (as in exact keys)."""
    return fold(text)


def _stem(word: str) -> str:
    """Lower case without possessive / plural endings (enough to match "cities" with "city")."""
    w = word.lower()
    if w.endswith("n't") or w in _BARE_NOT:
        return "not"
    if w in _BARE_STOP:
        return "i"  # any stop word: carries nothing
    w = w.removesuffix("'s").removesuffix("'")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _near(a: str, b: str) -> bool:
    """Same word up to a derived ending or a one-letter typo: Israel ~ Israeli, Philips ~ Phillips."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    if len(short) < 4:
        return False
    common = 0
    while common < len(short) and short[common] == long_[common]:
        common += 1
    if common == len(short) or (common >= 5 and common >= len(long_) - 3):
        return True
    if len(short) < 5 or len(long_) - len(short) > 1:
        return False
    if len(short) == len(long_):
        diff = [i for i, (x, y) in enumerate(zip(short, long_, strict=True)) if x != y]
        return len(diff) == 1 or (  # one substitution, or two neighbours swapped ("recieved")
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and short[diff[0]] == long_[diff[1]]
            and short[diff[1]] == long_[diff[0]]
        )
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


@functools.cache
def vocabulary() -> frozenset[str]:
    """Whole words of the encoder's WordPiece vocabulary (empty when the model files are missing)."""
    try:
        from tokenizers import Tokenizer

        from tollhouse.embeddings.encoder import default_model_dir

        tok = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    except Exception as exc:  # the rare-word check then passes everything
        log.warning("semantic cache: encoder vocabulary unavailable", extra={"error": type(exc).__name__})
        return frozenset()
    return frozenset(w for w in tok.get_vocab() if w.isalpha())


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """What the match checks read from one text."""

    numbers: frozenset[str]
    negated: bool
    entities: frozenset[str]  # stems of capitalised (not sentence-initial), acronym and alphanumeric words
    words: frozenset[str]  # stems of every word
    content: tuple[str, ...]  # stems of content words in order of appearance, first occurrence only
    stems: tuple[str, ...]  # stems of every word in order
    rare: frozenset[str]  # content stems the encoder's vocabulary lacks as whole words
    negated_bases: frozenset[str]  # "profit" of "non-profit" / "nonprofit", "safe" of "unsafe"

    @classmethod
    def of(cls, text: str) -> TextFeatures:
        text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
        text = _ACRONYM.sub(lambda m: m.group().replace(".", ""), text)
        matches = list(_WORD.finditer(text))
        raw = [m.group() for m in matches]
        alpha = [w for w in raw if w[0].isalpha()]
        # In Title Case Text capitals say nothing: only acronyms and alphanumerics count as entities there.
        title = len(alpha) >= 3 and sum(w[0].isupper() for w in alpha[1:]) >= (len(alpha) - 1) / 2
        entities: set[str] = set()
        for m, w in zip(matches, raw, strict=True):
            before = text[: m.start()].rstrip()
            initial = not before or before[-1] in '.?!:;"(['
            strong = sum(c.isupper() for c in w) >= 2 or (
                any(c.isdigit() for c in w) and any(c.isalpha() for c in w)
            )
            capital = w[0].isupper() and not (initial or title) and w != "I" and not w.startswith("I'")
            stem = _stem(w)
            if len(w) >= 2 and (strong or capital) and stem not in _STOP and not _ORDINAL.fullmatch(w):
                entities.add(stem)
        stems = tuple(_stem(w) for w in raw)
        parts = {_stem(p) for w in raw if "-" in w for p in w.split("-")}  # self-incompetence: also its parts
        content = tuple(
            dict.fromkeys(
                s for w, s in zip(raw, stems, strict=True) if w.lower() not in _STOP and s not in _STOP
            )
        )
        vocab = vocabulary()
        rare = frozenset(
            s
            for w, s in zip(raw, stems, strict=True)
            if vocab and s in content and w.isalpha() and w.lower() not in vocab and s not in vocab
        )
        # "advantages and disadvantages": a base the text also holds bare is not negated by it.
        negated_bases = frozenset(
            _stem(w[len(p.group()) :])
            for w in raw
            if w[0].isalpha() and (p := _NEG_PREFIX.match(w.lower())) is not None
        ) - frozenset(stems)
        return cls(
            numbers=frozenset(n.replace(",", "") for n in _NUMBER.findall(text)),
            negated=any(s == "not" or s in _NEGATION for s in stems),
            entities=frozenset(entities),
            words=frozenset(stems) | parts,
            content=content,
            stems=stems,
            rare=rare,
            negated_bases=negated_bases,
        )


def _unmatched(mine: Collection[str], theirs: frozenset[str]) -> bool:
    return any(w not in theirs and not any(_near(w, t) for t in theirs) for w in mine)


def _coordinated(f: TextFeatures, x: str, y: str) -> bool:
    """x and y side by side or joined by and/or/vs ("a goal and a dream"): their order carries no role."""
    at_x = [i for i, s in enumerate(f.stems) if s == x]
    at_y = [i for i, s in enumerate(f.stems) if s == y]
    for i in at_x:
        for j in at_y:
            lo, hi = min(i, j), max(i, j)
            between = f.stems[lo + 1 : hi]
            if hi - lo == 1 or (
                hi - lo <= 4
                and any(s in _COORDINATORS for s in between)
                and all(s in _STOP or s in _COORDINATORS for s in between)
            ):
                return True
    return False


def _order_swapped(a: TextFeatures, b: TextFeatures) -> bool:
    """Shared content words in another order, not merely coordinated: "X think of Y" vs "Y think of X"."""
    common = set(a.content) & set(b.content)
    seq_a = [w for w in a.content if w in common]
    for i, x in enumerate(seq_a):
        for y in seq_a[i + 1 :]:
            # Every x before every y in one text, every y before every x in the other (repeats don't count).
            if _before(a, x, y) and _before(b, y, x) and not (_coordinated(a, x, y) or _coordinated(b, x, y)):
                return True
    return False


def _before(f: TextFeatures, x: str, y: str) -> bool:
    last_x = max(i for i, s in enumerate(f.stems) if s == x)
    return all(i > last_x for i, s in enumerate(f.stems) if s == y)


def _antonym_swap(a: TextFeatures, b: TextFeatures) -> bool:
    only_b = b.words - a.words
    return any(_OPPOSITE.get(w, frozenset()) & only_b for w in a.words - b.words)


def _negating_prefix(a: TextFeatures, b: TextFeatures) -> bool:
    """A word negated by a prefix in one text stands bare in the other: "non-profit" / "profit"."""
    plain_a = frozenset(a.stems)
    plain_b = frozenset(b.stems)
    return bool((a.negated_bases - b.negated_bases) & plain_b) or bool(
        (b.negated_bases - a.negated_bases) & plain_a
    )


def _one_sided_qualifier(a: TextFeatures, b: TextFeatures) -> bool:
    """A restricting qualifier ("only", "next", "used", "free", …) in one text and not the other."""
    qa = {s for s in a.stems if s in _QUALIFIERS and s not in a.entities}
    qb = {s for s in b.stems if s in _QUALIFIERS and s not in b.entities}
    return qa != qb and bool((qa - b.words) or (qb - a.words))


def mismatch(stored: TextFeatures, query: TextFeatures, checks: Collection[str] = CHECKS) -> str | None:
    """The name of the first match check the pair fails, or None when every check in ``checks`` passes."""
    if "numbers" in checks and stored.numbers != query.numbers:
        return "numbers"
    if "negation" in checks and stored.negated != query.negated:
        return "negation"
    if "entities" in checks and (
        _unmatched(stored.entities, query.words) or _unmatched(query.entities, stored.words)
    ):
        return "entities"
    if "rare_words" in checks and (
        _unmatched(stored.rare, query.words) or _unmatched(query.rare, stored.words)
    ):
        return "rare_words"
    if "antonyms" in checks and _antonym_swap(stored, query):
        return "antonyms"
    if "order" in checks and _order_swapped(stored, query):
        return "order"
    if "negating_prefix" in checks and _negating_prefix(stored, query):
        return "negating_prefix"
    if "qualifiers" in checks and _one_sided_qualifier(stored, query):
        return "qualifiers"
    return None


# ---- settings → index ---------------------------------------------------------------------------------


class _SemanticSettings(Protocol):
    threshold: float
    checks: bool
    backend: Backend
    sqlite_path: str
    max_entries: int


def semantic_config(settings: _SemanticSettings) -> SemanticConfig:
    """The ``SemanticConfig`` of the settings' ``cache.semantic`` section (fields it lacks keep defaults)."""
    return SemanticConfig(
        threshold=settings.threshold,
        checks=settings.checks,
        backend=settings.backend,
        sqlite_path=settings.sqlite_path,
        max_entries=settings.max_entries,
        ann_min_entries=getattr(settings, "ann_min_entries", ANN_MIN_ENTRIES),
    )
