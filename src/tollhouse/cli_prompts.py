"""``tollhouse prompts list|show|diff|push|label|rollback|metrics``: straight to the configured prompt store
(and counters), no server needed. Writes move the store's change token, so running gateways pick them up
within ``prompts.reload_interval_s``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from tollhouse.cli_audit import record
from tollhouse.errors import InvalidRequest
from tollhouse.prompts import views
from tollhouse.prompts.drafts import check_label
from tollhouse.prompts.registry import PromptRegistry
from tollhouse.settings import Settings
from tollhouse.stores.build import prompt_counters, prompt_store
from tollhouse.stores.prompts import LabelEvent

Loader = Callable[[argparse.Namespace], Settings]


async def _with_registry(settings: Settings, fn: Callable[[PromptRegistry], Awaitable[Any]]) -> Any:
    cfg = settings.prompts
    registry = PromptRegistry(cfg, prompt_store(cfg), prompt_counters(cfg, settings.redis))
    await registry.store.open()
    try:
        await registry.reload()
        return await fn(registry)
    finally:
        await registry.counters.aclose()
        await registry.store.aclose()


def _read_version(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"--file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"--file {path}: a version is a mapping (messages, model, params, variables, notes)."
        )
    return data


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _prompts_cmd(load: Loader) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load(args)
        action = args.prompts_action
        if getattr(args, "label", None):
            check_label(args.label)
        if action == "metrics" and settings.prompts.counters == "memory":
            if not args.url:
                raise InvalidRequest(
                    "prompts.counters is memory: the counts live in the gateway's process. Pass --url "
                    "http://HOST:PORT to read them from a running gateway's admin API, or use counters: "
                    "redis."
                )
            fetched = _fetch_metrics(settings, args)
            print(json.dumps(fetched, indent=2) if args.json else _metrics_table(fetched))
            return 0

        async def go(reg: PromptRegistry) -> Any:
            if action == "list":
                return [views.summary(p) for p in reg.all()]
            if action == "show":
                prompt = reg.get(args.id)
                if args.version is not None:
                    version = prompt.versions.get(args.version)
                    if version is None:
                        raise InvalidRequest(f"Prompt '{args.id}' has no version {args.version}.")
                    return views.version_text(version)
                return views.detail(prompt)
            if action == "diff":
                try:
                    return views.diff(reg.get(args.id), args.a, args.b)
                except KeyError as exc:
                    raise InvalidRequest(str(exc.args[0])) from None
            if action == "push":
                version = await reg.push(args.id, _read_version(args.file), args.author)
                await record(settings, "prompt.push", args.id, version=version.version, author=args.author)
                out: dict[str, Any] = {"pushed": version.to_dict()}
                if args.label:
                    event = await reg.move_label(args.id, args.label, version.version, args.author)
                    await _record_label(settings, args.id, event)
                    out["label"] = event.to_dict()
                return out
            if action == "label":
                event = await reg.move_label(args.id, args.label, args.version, args.author, args.reason)
                await _record_label(settings, args.id, event)
                return event.to_dict()
            if action == "rollback":
                event = await reg.roll_back(args.id, args.label, args.author)
                await _record_label(settings, args.id, event, "prompt.roll_back")
                return event.to_dict()
            return await reg.version_metrics(args.id, args.version, args.against)

        out = asyncio.run(_with_registry(settings, go))
        if isinstance(out, str):
            sys.stdout.write(out)
        elif action == "list" and not args.json:
            rows = [["ID", "LATEST", "LABELS", "EXPERIMENT"]]
            for p in out:
                labels = ", ".join(f"{k}={v}" for k, v in p["labels"].items())
                exp = json.dumps(p["experiment"]["arms"]) if p["experiment"] else "-"
                rows.append([p["id"], str(p["latest"]), labels or "-", exp])
            print(_table(rows))
        elif action == "metrics" and not args.json:
            print(_metrics_table(out))
        else:
            print(json.dumps(out, indent=2, default=str))
        return 0

    return run


async def _record_label(
    settings: Settings, pid: str, event: LabelEvent, action: str = "prompt.promote"
) -> None:
    await record(
        settings,
        action,
        pid,
        label=event.label,
        to=event.version,
        previous=event.previous,
        reason=event.reason,
        author=event.actor,
    )


def _fetch_metrics(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """``GET /admin/prompts/{id}/versions/{v}/metrics`` of a running gateway, with the admin key."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = f"?against={args.against}" if args.against is not None else ""
    pid = urllib.parse.quote(args.id, safe="")
    url = f"{args.url.rstrip('/')}/admin/prompts/{pid}/versions/{args.version}/metrics{query}"
    admin = settings.admin_key()
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {admin}"} if admin else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except urllib.error.HTTPError as exc:
        raise InvalidRequest(f"{url}: {exc.code} {exc.read().decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InvalidRequest(f"{url}: {exc}") from None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metrics_table(m: dict[str, Any]) -> str:
    names = [
        "requests",
        "error_rate",
        "latency_p50_s",
        "latency_p95_s",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "cache_hit_rate",
        "rating_mean",
        "ratings",
        "guardrail_blocks",
    ]
    rows = [["", f"v{m['version']}", f"v{m['version']} shadow"]]
    rows += [[n, _fmt(m[n]), _fmt(m["shadow"][n])] for n in names]
    lines = [f"{m['prompt']} version {m['version']} (labels: {', '.join(m['labels']) or '-'})", _table(rows)]
    cmp = m.get("compared_with")
    if cmp:
        for key in ("error_rate_diff", "rating_diff"):
            d = cmp[key]
            if d is not None:
                lo, hi = d["ci95"]
                lines.append(
                    f"{key} vs v{cmp['version']}: {d['estimate']:+.4f} (95% CI {lo:+.4f} .. {hi:+.4f})"
                )
    return "\n".join(lines)


def add_prompt_commands(sub: Any, load: Loader) -> None:
    prompts = sub.add_parser(
        "prompts", help="manage stored prompts (list, show, diff, push, label, rollback, metrics)"
    )
    actions = prompts.add_subparsers(dest="prompts_action", required=True)
    for action in ("list", "show", "diff", "push", "label", "rollback", "metrics"):
        p = actions.add_parser(action)
        p.add_argument("--config", help="YAML config file")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if action != "list":
            p.add_argument("id", help="prompt id")
        if action == "show":
            p.add_argument("--version", type=int, help="one version's text")
        if action == "diff":
            p.add_argument("a", type=int, help="from version")
            p.add_argument("b", type=int, help="to version")
        if action == "push":
            p.add_argument(
                "--file", required=True, help="YAML or JSON: messages, model, params, variables, notes"
            )
            p.add_argument("--label", help="also move this label to the new version")
        if action == "label":
            p.add_argument("label", help="label name (production, staging, …)")
            p.add_argument("version", type=int)
            p.add_argument("--reason", default="")
        if action == "rollback":
            p.add_argument("label", help="label to move back to its previous version")
        if action == "metrics":
            p.add_argument("--version", type=int, required=True)
            p.add_argument("--against", type=int, help="compare with this version (default: the one before)")
            p.add_argument(
                "--url", help="a running gateway (needed with counters: memory), e.g. http://127.0.0.1:8000"
            )
        if action in ("push", "label", "rollback"):
            p.add_argument("--author", default="cli", help="who is making the change (kept in the history)")
        p.set_defaults(func=_prompts_cmd(load))
