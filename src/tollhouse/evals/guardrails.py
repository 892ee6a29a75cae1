"""``tollhouse eval guardrails``: precision / recall / F1 / FPR of the guardrails on the shared dev sets.

Model figures are 5-fold cross-validated (every row is scored by a model fitted without it), never
train-set figures; latency is that of the shipped models. Every rate has its 95 % interval (Wilson; F1 by
row bootstrap). PII is ``evals/pii.py``; moderation scores the lexical rules and the classifier.
"""

from __future__ import annotations

from pathlib import Path

from tollhouse.evals import moderation_eval, pii
from tollhouse.evals.injection_eval import eval_injection
from tollhouse.evals.report import SETS


def missing(datasets: Path, which: str) -> list[str]:
    """The dev-set files an evaluation needs that ``datasets`` lacks (for ``all``: only when it has none)."""
    names = ["injection", "pii", "moderation"] if which == "all" else [which]
    absent = [SETS[n] for n in names if not (datasets / SETS[n]).is_file()]
    return absent if which != "all" or len(absent) == len(names) else []


def run(datasets: Path, which: str, limit: int | None = None, *, classifier: bool = False) -> list[str]:
    """The report lines; with ``all``, the sets ``datasets`` lacks are named and skipped."""
    out: list[str] = []
    for name in ("injection", "pii", "moderation"):
        if which not in ("all", name):
            continue
        path = datasets / SETS[name]
        if not path.is_file():
            out.append(f"{name}: skipped, {path} not found")
            continue
        if name == "injection":
            out += eval_injection(path, limit, classifier=classifier)
        else:
            out += (pii.run if name == "pii" else moderation_eval.run)(path, limit)
    return out
