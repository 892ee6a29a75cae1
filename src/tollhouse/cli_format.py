"""How the CLI prints: aligned tables for people (the default), JSON for scripts (``--json``). Timestamps
are shown as UTC dates in tables and stay epoch seconds in JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any


def emit(obj: Any, *, as_json: bool, kind: str) -> str:
    """``obj`` as the command's output: JSON, or the table for ``kind`` (key, keys, usage, costs)."""
    if as_json:
        return json.dumps(obj, indent=2, default=str)
    if kind == "key":
        return key_detail(obj)
    if kind == "keys":
        return key_table(obj)
    if kind == "usage":
        return usage_table(obj)
    return costs_summary(obj)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.10f}".rstrip("0").rstrip(".") if v else "0"
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v) or "-"
    return str(v)


def _status(k: dict[str, Any]) -> str:
    if k.get("revoked_at") is not None:
        return "revoked"
    exp = k.get("expires_at")
    if exp is not None and exp <= time.time():
        return "expired"
    return "active"


def key_table(keys: list[dict[str, Any]]) -> str:
    if not keys:
        return "no API keys"
    rows = [
        [
            k["id"],
            k["name"] or "-",
            k["prefix"] + "…",
            _status(k),
            k["user"],
            k["team"],
            k["models"] or "all",
            k["rpm"],
            k["tpm"],
            k["daily_usd"],
            k["monthly_usd"],
            when(k["created_at"]),
            when(k["last_used_at"]),
        ]
        for k in keys
    ]
    headers = [
        "ID",
        "NAME",
        "PREFIX",
        "STATUS",
        "USER",
        "TEAM",
        "MODELS",
        "RPM",
        "TPM",
        "USD/DAY",
        "USD/MONTH",
    ]
    return table([*headers, "CREATED", "LAST USED"], rows)


def key_detail(k: dict[str, Any]) -> str:
    fields: list[tuple[str, Any]] = [
        ("id", k["id"]),
        ("name", k["name"] or "-"),
        ("status", _status(k)),
        ("prefix", k["prefix"] + "…"),
        ("user", k["user"]),
        ("team", k["team"]),
        ("models", k["models"] or "all"),
        ("rpm", k["rpm"]),
        ("tpm", k["tpm"]),
        ("model limits", ", ".join(f"{m}: {v}" for m, v in (k.get("model_limits") or {}).items()) or None),
        ("daily budget (USD)", k["daily_usd"]),
        ("monthly budget (USD)", k["monthly_usd"]),
        ("created", when(k["created_at"])),
        ("expires", when(k["expires_at"])),
        ("last used", when(k["last_used_at"])),
        ("revoked", when(k["revoked_at"])),
    ]
    if k.get("key"):
        fields.append(("key", k["key"]))
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {_cell(v)}" for name, v in fields)


_USAGE_COLUMNS = [
    ("requests", "REQUESTS"),
    ("errors", "ERRORS"),
    ("prompt_tokens", "PROMPT TOK"),
    ("completion_tokens", "COMPL TOK"),
    ("cache_hits", "CACHE HITS"),
    ("cost_usd", "COST USD"),
    ("saved_usd", "SAVED USD"),
]


def usage_table(report: dict[str, Any]) -> str:
    group = report["group_by"]
    head = f"usage by {group}, {when(report['since'])} → {when(report['until'])}"
    rows = [[r[group], *(r[f] for f, _ in _USAGE_COLUMNS)] for r in report["data"]]
    rows.append(["TOTAL", *(report["totals"][f] for f, _ in _USAGE_COLUMNS)])
    return head + "\n\n" + table([group.upper(), *(h for _, h in _USAGE_COLUMNS)], rows)


def costs_summary(c: dict[str, Any]) -> str:
    lines = [
        f"costs, {when(c['since'])} → {when(c['until'])}",
        "",
        table(
            ["TOTAL USD", "REQUESTS", "AVG USD/REQ", "ERRORS", "CACHE HIT RATE", "CACHE SAVED USD"],
            [
                [
                    c["total_cost_usd"],
                    c["total_requests"],
                    c["average_cost_per_request_usd"],
                    c["errors"],
                    f"{c['cache_hit_rate']:.1%}",
                    c["cache_saved_usd"],
                ]
            ],
        ),
    ]
    if c["cost_by_model"]:
        rows = sorted(c["cost_by_model"].items(), key=lambda kv: -kv[1])
        lines += ["", table(["MODEL", "COST USD"], rows)]
    if c["top_users"]:
        lines += [
            "",
            table(
                ["USER", "COST USD", "REQUESTS"],
                [[u["user"], u["cost_usd"], u["requests"]] for u in c["top_users"]],
            ),
        ]
    if c.get("unknown_cost_requests"):
        lines += ["", f"{c['unknown_cost_requests']} request(s) had no price configured (not in the totals)"]
    return "\n".join(lines)
