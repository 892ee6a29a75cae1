"""Shared by the evaluation reports: reading a dev set, 95 % confidence intervals (Wilson score intervals for
rates, a row bootstrap for F1) and their formatting."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SETS = {  # folder under --datasets: what each evaluation reads
    "injection": "injection/dev.jsonl",
    "pii": "pii/dev.jsonl",
    "moderation": "moderation/dev.jsonl",
    "cache": "paraphrase/dev.jsonl",
}


def rows(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The JSON Lines rows of ``path``; with ``limit``, an even slice across the file (keeps every source)."""
    out = []
    for number, line in enumerate(path.read_text().split("\n"), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {number} is not a JSON object")
            out.append(row)
    if limit is not None and limit < len(out):
        step = len(out) / limit
        out = [out[int(i * step)] for i in range(limit)]
    return out


Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of the proportion ``k / n`` ((0, 1) when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def bootstrap_f1(
    rows: Sequence[tuple[int, int, int]], draws: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of F1 when the rows (each its own tp, fp, fn) are resampled."""
    if not rows:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    counts = np.asarray(rows, dtype=np.float64)
    n = len(rows)
    sums = np.concatenate(
        [
            rng.multinomial(n, np.full(n, 1 / n), size=min(200, draws - i)) @ counts
            for i in range(0, draws, 200)
        ]
    )
    tp, fp, fn = sums[:, 0], sums[:, 1], sums[:, 2]
    scores = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=tp > 0)
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return float(lo), float(hi)


def rate(k: int, n: int) -> str:
    """``0.950 [0.901-0.976]``: the proportion and its 95 % Wilson interval."""
    if n == 0:
        return "  —  "
    lo, hi = wilson(k, n)
    return f"{k / n:.3f} [{lo:.3f}-{hi:.3f}]"


def prf(tp: int, fp: int, fn: int, rows: Sequence[tuple[int, int, int]] | None = None) -> str:
    """Precision, recall (Wilson intervals) and F1 (row-bootstrap interval when ``rows`` is given)."""
    out = f"precision {rate(tp, tp + fp)}  recall {rate(tp, tp + fn)}  F1 {f1(tp, fp, fn):.3f}"
    if rows:
        lo, hi = bootstrap_f1(rows)
        out += f" [{lo:.3f}-{hi:.3f}]"
    return out


def require(row: dict[str, Any], fields: dict[str, type], where: str) -> None:
    """``ValueError`` naming the first field of ``fields`` that ``row`` lacks or holds with another type."""
    for name, kind in fields.items():
        if not isinstance(row.get(name), kind):
            raise ValueError(f"{where}: field {name!r} is missing or not of type {kind.__name__}")
