"""Misspelled attack words back to their spelling: "ignroe all previosu instrucitons" → "ignore all previous
instructions".

Attackers misspell the words keyword filters and classifiers look for; a linear model over n-grams sees
"ignroe" as a word it never met. A word is rewritten only when it is *not* an English word the encoder's
vocabulary knows as a whole word, nor a dictionary word listed here ("paint" stays "paint", never
"print"; "abode" never "above") and it is one edit (a dropped,
doubled, swapped or mistyped letter) away from exactly one word of a short list of words that carry
injection intent. Lookups go through a table of one-letter deletions (SymSpell's idea), so a word costs a
few dictionary probes and ordinary text — whose words are known — is returned as it is.
"""

from __future__ import annotations

import re
from functools import cache

# Words that carry an attack's meaning and that obfuscation targets; five letters or more (one edit from a
# shorter word is too often another word). Plurals and common forms listed where they differ.
_INTENT = """
ignore ignoring ignored disregard forget forgetting override bypass previous preceding earlier above
initial original instruction instructions prompt prompts system directive directives guideline
guidelines command commands context hidden secret secrets password passwords passphrase reveal
repeat print output display developer message messages restriction restrictions limitation
limitations filter filters censorship unfiltered uncensored jailbreak jailbroken pretend roleplay
behave everything confidential configuration setup summarise summarize translate rules tasks access
administrator unrestricted ethics morals policy policies content conversation assistant anything
"""
INTENT_WORDS = frozenset(_INTENT.split())
# Dictionary words one edit from an intent word that the vocabulary does not know ("abode", "repent",
# "imitations"): left alone. Printed by bench/respell_dictionary.py from a 130k-word English dictionary.
_NEIGHBOURS = """
abode anythings basks behaves bidden bypast casks chidden commend commends concent corals disregards
ethic ethnics falter falters filer filers filler fillers fitter fitters forgat forger forges forgets
getup gorals gorget gules hodden imitations jailbreaks kilter letup massages messuage messuages
midden milter misplay modals morass morays morels mules orals overrides overripe overrode overside
passphrases pearlier pervious pint polices polities polity prebend prepend pretends prink prinz
pules rales receding reheat repent reseal reseat reval revel riles rubes rubles rues ruses secretes
setups signore situp sucrets summaries summarizer summarizes tacks tass tilter tusks uncensured
yules
"""
DICTIONARY_NEIGHBOURS = frozenset(_NEIGHBOURS.split())
MIN_LEN = 4  # shorter words are never rewritten
_WORD = re.compile(r"\b[a-z]{4,}\b")


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@cache
def _table() -> dict[str, frozenset[str]]:
    """Each intent word and each of its one-letter deletions → the intent words it comes from."""
    out: dict[str, set[str]] = {}
    for w in INTENT_WORDS:
        for key in {w, *_deletes(w)}:
            out.setdefault(key, set()).add(w)
    return {k: frozenset(v) for k, v in out.items()}


@cache
def known_words() -> frozenset[str]:
    """Whole words of the encoder's vocabulary (about 20k English words), never rewritten."""
    from tollhouse.guardrails.features import tokenizer

    return frozenset(w for w in tokenizer().get_vocab() if w.isalpha() and w.isascii())


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance exactly one: one letter dropped, added, changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def correction(word: str) -> str | None:
    """The intent word ``word`` is a one-edit misspelling of, when there is exactly one and ``word`` is not
    itself a known word."""
    if len(word) < MIN_LEN or word in INTENT_WORDS or word in known_words() or word in DICTIONARY_NEIGHBOURS:
        return None
    table = _table()
    found: set[str] = set()
    for key in {word, *_deletes(word)}:
        for cand in table.get(key, ()):
            if _one_edit(word, cand):
                found.add(cand)
    return found.pop() if len(found) == 1 else None


def respell(norm: str) -> str:
    """``norm`` (normalised: lower case) with misspelled intent words corrected."""
    unknown = set(_WORD.findall(norm)) - known_words() - INTENT_WORDS - DICTIONARY_NEIGHBOURS
    fixes = {w: c for w in unknown if (c := correction(w)) is not None}
    if not fixes:
        return norm
    return _WORD.sub(lambda m: fixes.get(m.group(0), m.group(0)), norm)
