"""``tollhouse eval pii``: span-level precision / recall / F1 of the PII rule with 95 % intervals.

On the dev set (``pii/dev.jsonl``) and on generated sentences (``evals/pii_data.py``, seed 1: the rules
were written against seed 0), which add what the dev set lacks — IBANs, phones of many countries and
the look-alikes that are not phones (timestamps, order ids, prices…). A detection counts when it overlaps
a gold span of the same type.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tollhouse.evals import pii_data
from tollhouse.evals.report import prf, rate, require, rows
from tollhouse.guardrails.ner import NER_TYPES, NERDetector
from tollhouse.guardrails.pii import ENTITIES, IBAN_LENGTHS, Span, detect

GENERATED = 3000
Gold = Sequence[tuple[int, int, str]]


class Counts:
    """tp / fp / fn per type, and per row (for the bootstrap)."""

    def __init__(self) -> None:
        self.tp: Counter[str] = Counter()
        self.fp: Counter[str] = Counter()
        self.fn: Counter[str] = Counter()
        self.per_row: dict[str, list[tuple[int, int, int]]] = defaultdict(list)

    def add(self, found: list[Span], gold: Gold, types: dict[str, str]) -> None:
        """``types`` maps gold types to detector types; gold types missing from it are ignored."""
        row: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for gs, ge, gt in gold:
            if gt not in types:
                continue
            hit = any(s.entity == types[gt] and s.start < ge and gs < s.end for s in found)
            (self.tp if hit else self.fn)[gt] += 1
            row[gt][0 if hit else 2] += 1
        for s in found:
            if not any(types.get(gt) == s.entity and s.start < ge and gs < s.end for gs, ge, gt in gold):
                gt = next((g for g, d in types.items() if d == s.entity), s.entity)
                self.fp[gt] += 1
                row[gt][1] += 1
        for gt in types:
            self.per_row[gt].append(tuple(row[gt]) if gt in row else (0, 0, 0))  # type: ignore[arg-type]

    def line(self, gt: str, note: str = "") -> str:
        tp, fp, fn = self.tp[gt], self.fp[gt], self.fn[gt]
        if tp + fn == 0:
            return f"  {gt:<14} no gold spans; {fp} detections (false positives){note}"
        return f"  {gt:<14} {prf(tp, fp, fn, self.per_row[gt])}  (gold {tp + fn}, fp {fp}){note}"


def _check(data: list[dict[str, Any]], path: Path) -> None:
    """Every row has ``full_text`` and ``spans`` with integer offsets and a type (else ``ValueError``)."""
    for i, row in enumerate(data, 1):
        require(row, {"full_text": str, "spans": list}, f"{path}: row {i}")
        for span in row["spans"]:
            fields = {"entity_type": str, "start_position": int, "end_position": int}
            require(span if isinstance(span, dict) else {}, fields, f"{path}: row {i}: a span")


def _dev_gold(row: dict[str, Any]) -> Gold:
    return [(s["start_position"], s["end_position"], s["entity_type"]) for s in row["spans"]]


def _timed(find: Callable[[str], list[Span]], text: str, times: list[float]) -> list[Span]:
    t0 = time.perf_counter()
    found = find(text)
    times.append((time.perf_counter() - t0) * 1000)
    return found


def _pct(times: list[float]) -> str:
    return f"p50 {np.percentile(times, 50):.3f} ms  p99 {np.percentile(times, 99):.3f} ms"


def _kilobyte_times(data: list[dict[str, Any]], n: int = 300) -> list[float]:
    """Rows strung together into 1 kB texts (PII-dense prompts), timed after a warm-up."""
    texts, text = [], ""
    for i in range(n * 8):
        text += data[(i * 7919) % len(data)]["full_text"] + " "
        if len(text) >= 1000:
            texts.append(text[:1000])
            text = ""
    times: list[float] = []
    for text in texts[:50] + texts[:n]:
        _timed(detect, text, times)
    return times[50:]


def eval_dev(path: Path, limit: int | None = None) -> list[str]:
    data = rows(path, limit)
    _check(data, path)
    counts, times = Counts(), list[float]()
    for row in data:
        counts.add(_timed(detect, row["full_text"], times), _dev_gold(row), {e: e for e in ENTITIES})
    out = [
        f"pii ({len(data)} rows, {path.name}; span level: same type, overlapping; 95 % intervals: "
        "Wilson, F1 by row bootstrap)"
    ]
    out += [counts.line(e) for e in ENTITIES]
    out.append(f"  latency        {_pct(times)} per row; {_pct(_kilobyte_times(data))} per 1 kB of rows")
    ner = NERDetector.available()
    if ner is None:
        out.append("  NER (opt-in)   not installed (pip install 'tollhouse[ner]'); not measured")
    else:
        ner_counts, ner_times = Counts(), list[float]()
        for row in data:
            ner_counts.add(_timed(ner.spans, row["full_text"], ner_times), _dev_gold(row), NER_TYPES)
        out += [ner_counts.line(gt, f"; NER {NER_TYPES[gt]}") for gt in NER_TYPES]
        out.append(f"  NER latency    {_pct(ner_times)}")
    gold_types = Counter(s["entity_type"] for row in data for s in row["spans"])
    covered = set(ENTITIES) | (set(NER_TYPES) if ner is not None else set())
    missing = [(k, v) for k, v in gold_types.most_common() if k not in covered]
    out.append("  not supported  " + (", ".join(f"{k} {v}" for k, v in missing) or "none"))
    return out


def eval_generated(n: int = GENERATED, seed: int = 1) -> list[str]:
    examples = pii_data.generate(n, seed)
    counts = Counts()
    negatives: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    recall_by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ex in examples:
        found = detect(ex.text)
        counts.add(found, ex.spans, {e: e for e in ENTITIES})
        if not ex.spans:
            negatives[ex.kind] += 1
            flagged[ex.kind] += bool(found)
        for a, b, gt in ex.spans:
            group = ex.kind.split(" (")[0]
            recall_by[group][1] += 1
            recall_by[group][0] += any(s.entity == gt and s.start < b and a < s.end for s in found)
    out = [
        f"pii, generated ({n} sentences, seed {seed}; phones of {len(pii_data.PHONE_FORMATS)} countries, "
        f"IBANs of {len(IBAN_LENGTHS)}, {len(pii_data.ADDRESS_FORMATS)} address formats)"
    ]
    out += [counts.line(e) for e in ("PHONE_NUMBER", "IBAN_CODE", "STREET_ADDRESS")]
    out.append("  look-alikes flagged as any type (share of sentences):")
    kinds = [f"{k.removeprefix('negative: ')} {rate(flagged[k], v)}" for k, v in sorted(negatives.items())]
    out += ["    " + ", ".join(kinds[i : i + 3]) for i in range(0, len(kinds), 3)]
    weakest = sorted(recall_by.items(), key=lambda kv: kv[1][0] / kv[1][1])[:4]
    out.append(
        "  lowest recall by format: " + ", ".join(f"{k} {rate(hit, total)}" for k, (hit, total) in weakest)
    )
    return out


def run(path: Path, limit: int | None = None) -> list[str]:
    return eval_dev(path, limit) + eval_generated(GENERATED if limit is None else max(300, limit * 10))
