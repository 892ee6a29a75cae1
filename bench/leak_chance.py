"""How often the secret_leak rule would fire by chance on text that does not hold the secret.

    .venv/bin/python bench/leak_chance.py [--datasets ../shared/datasets] [--secrets 200]

Secrets: random letter-and-digit strings of 5-10 characters (how generated passwords look) and words of
5-10 letters from the encoder's vocabulary (how game passwords look). Texts: every benign text of the
shared dev sets (paraphrase questions, moderation prompts, benign injection-set prompts) standing in for
answers. A word secret written plainly in a text is a real leak, not chance: those hits are counted apart.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from collections import Counter
from pathlib import Path

from tollhouse.guardrails.leak import decoded, secret_found
from tollhouse.guardrails.respell import known_words

ROOT = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]


def texts(datasets: Path) -> list[str]:
    out: list[str] = []
    for line in _lines(datasets / "paraphrase" / "dev.jsonl"):
        r = json.loads(line)
        out += [r["q1"], r["q2"]]
    out += [json.loads(x)["prompt"] for x in _lines(datasets / "moderation" / "dev.jsonl")]
    for line in _lines(datasets / "injection" / "dev.jsonl"):
        r = json.loads(line)
        if r["label"] == 0:
            out.append(r["text"])
    return list(dict.fromkeys(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    ap.add_argument("--secrets", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(0)
    corpus = texts(Path(args.datasets))
    alphabet = string.ascii_letters + string.digits
    randoms = ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 10))) for _ in range(args.secrets)]
    words = sorted(w for w in known_words() if 5 <= len(w) <= 10)
    picked = rng.sample(words, args.secrets)
    chars = sum(len(t) for t in corpus)
    print(f"{len(corpus)} texts ({chars / 1e6:.1f} M characters), {args.secrets} secrets of each kind")
    for kind, secrets in (("random 5-10 characters", randoms), ("vocabulary words 5-10 letters", picked)):
        t0 = time.perf_counter()
        hits: Counter[str] = Counter()
        plain = 0
        for t in corpus:
            hidden = decoded(t)  # once per answer, as the rule does
            for s in secrets:
                how = secret_found(t, s, hidden)
                if how is None:
                    continue
                if how == "as written" and s.casefold() in t.casefold():
                    plain += 1  # the word itself: a real mention, not a chance match
                else:
                    hits[how] += 1
        pairs = len(secrets) * len(corpus)
        ms = (time.perf_counter() - t0) * 1000 / pairs  # decoding each text counted in
        rate = sum(hits.values()) / pairs
        print(
            f"{kind}: chance hits {sum(hits.values())} of {pairs:,} text-secret pairs ({rate:.2e}; "
            f"{dict(hits)}), plain mentions {plain}; {ms * 1000:.1f} µs per text-secret check"
        )


if __name__ == "__main__":
    main()
