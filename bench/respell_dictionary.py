"""Print the English words the injection respelling must leave alone (``respell.DICTIONARY_NEIGHBOURS``).

    .venv/bin/python bench/respell_dictionary.py [/usr/share/dict/american-english-large]

A word one edit from an intent word ("abode" / "above", "repent" / "repeat") is rewritten unless it is
known; the encoder's vocabulary knows ~21k whole words, a large dictionary (Debian's ``wamerican-large``,
130k words) knows more. This lists the dictionary words the vocabulary alone would let through.
"""

from __future__ import annotations

import sys

from tollhouse.guardrails import respell


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/dict/american-english-large"
    with open(path, encoding="utf-8") as f:
        words = {w.strip().lower() for w in f if w.strip().isalpha() and w.strip().isascii()}
    respell.DICTIONARY_NEIGHBOURS = frozenset()
    hits = sorted(w for w in words if respell.correction(w) is not None)
    print(f"# {len(hits)} of {len(words)} words")
    print(" ".join(hits))


if __name__ == "__main__":
    main()
