"""The evaluators of a prompt evaluation: each checks one answer of one case and passes or fails.

``exact`` / ``contains`` / ``regex`` (against the case's ``expected`` or the check's own ``value`` /
``pattern``), ``json_schema`` (the answer is JSON valid against ``schema``), ``similarity`` (cosine of the
answer's and the expected text's embeddings ≥ ``min``), ``latency`` (≤ ``max_s``) and ``cost`` (≤
``max_usd``). Judges are in ``judge.py``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tollhouse.guardrails.output import schema_errors

KINDS = ("exact", "contains", "regex", "json_schema", "similarity", "latency", "cost")
Embed = Callable[[list[str]], Awaitable[list[list[float]]]]


@dataclass(slots=True, frozen=True)
class Check:
    kind: str
    args: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.args.get("name") or self.kind)

    @classmethod
    def parse(cls, data: Any, where: str) -> Check:
        """A check from JSON: ``{"type": "contains", "value": "refund"}``. Raises ``ValueError`` naming
        ``where`` and the problem."""
        if not isinstance(data, dict) or data.get("type") not in KINDS:
            raise ValueError(f'{where}: a check is {{"type": one of {", ".join(KINDS)}, …}}')
        args = {k: v for k, v in data.items() if k != "type"}
        need = {"regex": "pattern", "json_schema": "schema", "latency": "max_s", "cost": "max_usd"}
        kind = str(data["type"])
        if kind in need and need[kind] not in args and not (kind == "regex" and "value" in args):
            raise ValueError(f"{where}: a {kind} check needs {need[kind]!r}")
        if kind == "regex":
            try:
                re.compile(str(args.get("pattern", args.get("value"))))
            except re.error as exc:
                raise ValueError(f"{where}: bad pattern: {exc}") from None
        return cls(kind, args)


@dataclass(slots=True)
class Outcome:
    """One case's answer from one version, with what the checks need."""

    text: str | None  # None: the request failed
    error: str | None
    latency_s: float
    cost_usd: float | None


async def run_check(check: Check, out: Outcome, expected: str | None, embed: Embed | None) -> bool | None:
    """Pass / fail; None when the check cannot apply (no expected text to compare with)."""
    a = check.args
    if check.kind == "latency":
        return out.error is None and out.latency_s <= float(a["max_s"])
    if check.kind == "cost":
        return out.error is None and (out.cost_usd or 0.0) <= float(a["max_usd"])
    if out.text is None:
        return False
    text = out.text
    if check.kind == "json_schema":
        return schema_errors(text, a["schema"]) is None
    if check.kind == "regex":
        return re.search(str(a.get("pattern", a.get("value"))), text) is not None
    target = a.get("value", expected)
    if target is None:
        return None
    target = str(target)
    if check.kind == "exact":
        return text.strip() == target.strip()
    if check.kind == "contains":
        if a.get("ignore_case", True):
            return target.lower() in text.lower()
        return target in text
    # similarity
    if embed is None:
        return None
    va, vb = (np.asarray(v, dtype=np.float64) for v in await embed([text, target]))
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb)) or 1.0
    return float(va @ vb) / denom >= float(a.get("min", 0.8))
