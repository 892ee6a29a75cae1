"""``tollhouse keys create|list|get|update|revoke|rotate`` and ``tollhouse usage|costs``: straight to the
configured stores (no server needed). Writes move the key store's version, so running gateways pick them
up within ``keys.refresh_interval_s``."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from tollhouse.access.keys import KeyService, KeySpec, public
from tollhouse.cli_audit import record
from tollhouse.cli_format import emit
from tollhouse.errors import InvalidRequest
from tollhouse.ledger.reports import Reports
from tollhouse.settings import Settings
from tollhouse.stores.build import key_store, ledger_store

Loader = Callable[[argparse.Namespace], Settings]


def _print(obj: Any, args: argparse.Namespace, kind: str) -> None:
    print(emit(obj, as_json=getattr(args, "json", False), kind=kind))


def known_models(settings: Settings) -> set[str]:
    """Every name a request may send in ``model``: models, aliases, groups, automatic routers."""
    names = {n for m in settings.all_models() for n in [m.name, *m.aliases]}
    names |= {g.name for g in settings.routing.groups} | {a.name for a in settings.routing.auto}
    return names


def _check_models(spec: KeySpec, settings: Settings) -> None:
    if not spec.models:
        return
    known = known_models(settings)
    unknown = [m for m in spec.models if m not in known]
    if unknown:
        raise InvalidRequest(
            f"--models: {', '.join(map(repr, unknown))} not configured; configured models: "
            f"{', '.join(sorted(known)) or 'none'}.",
            param="models",
        )


# KeySpec field → the flag that sets it, to name the flag when its value is refused.
_FLAGS = {"expires_at": "--expires-days", "daily_usd": "--daily-usd", "monthly_usd": "--monthly-usd"}


def _spec(args: argparse.Namespace) -> KeySpec:
    """The flags as a ``KeySpec``, validated as ``/admin/keys`` validates a body; a refused value is an
    ``InvalidRequest`` naming its flag."""
    data: dict[str, Any] = {}
    for name in ("name", "user", "team", "rpm", "tpm", "daily_usd", "monthly_usd"):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    if getattr(args, "models", None):
        data["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    days = getattr(args, "expires_days", None)
    if days is not None:
        if not (math.isfinite(days) and days > 0):
            raise InvalidRequest(f"--expires-days must be a positive number of days, got {days:g}.")
        data["expires_at"] = time.time() + days * 86400
    try:
        return KeySpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
        raise InvalidRequest(f"{flag}: {first['msg']}.", param=field or None) from None


async def _with_service(settings: Settings, fn: Callable[[KeyService], Awaitable[Any]]) -> Any:
    store = key_store(settings.keys)
    await store.open()
    try:
        return await fn(KeyService(store))
    finally:
        await store.aclose()


def _keys_cmd(load: Loader) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load(args)
        action = args.keys_action
        spec = _spec(args) if action in ("create", "update") else KeySpec()  # refused before any write
        _check_models(spec, settings)

        async def go(svc: KeyService) -> Any:
            if action == "list":
                return [public(k) for k in await svc.list()]
            if action == "get":
                return public(await svc.get(args.id))
            detail = spec.model_dump(exclude_none=True)
            if action == "create":
                secret, key = await svc.create(spec)
                await record(settings, "key.create", key.id, **detail)
                print("Store this key now: it is not shown again.", file=sys.stderr)
                return public(key, secret)
            if action == "update":
                key = await svc.update(args.id, spec)
                await record(settings, "key.update", key.id, **detail)
                return public(key)
            if action == "revoke":
                key = await svc.revoke(args.id)
                await record(settings, "key.revoke", key.id)
                return public(key)
            secret, key = await svc.rotate(args.id)
            await record(settings, "key.rotate", key.id)
            print("Store this key now: it is not shown again. The old one no longer works.", file=sys.stderr)
            return public(key, secret)

        _print(asyncio.run(_with_service(settings, go)), args, "keys" if action == "list" else "key")
        return 0

    return run


def add_key_commands(sub: Any, load: Loader) -> None:
    keys = sub.add_parser("keys", help="manage API keys (create, list, get, update, revoke, rotate)")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    for action in ("create", "list", "get", "update", "revoke", "rotate"):
        p = actions.add_parser(action)
        p.add_argument("--config", help="YAML config file")
        p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
        if action != "create" and action != "list":
            p.add_argument("id", help="key id (key_…)")
        if action in ("create", "update"):
            p.add_argument("--name")
            p.add_argument("--user")
            p.add_argument("--team")
            p.add_argument(
                "--models", help="comma-separated models the key may call, each one configured (default: all)"
            )
            p.add_argument("--rpm", type=int, help="requests per minute")
            p.add_argument("--tpm", type=int, help="tokens per minute")
            p.add_argument("--daily-usd", type=float, dest="daily_usd", help="spend cap per UTC day (USD)")
            p.add_argument(
                "--monthly-usd", type=float, dest="monthly_usd", help="spend cap per UTC month (USD)"
            )
            p.add_argument("--expires-days", type=float, dest="expires_days")
        p.set_defaults(func=_keys_cmd(load))


def _report_cmd(load: Loader) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load(args)
        now = time.time()
        since = now - args.days * 86400

        async def go() -> Any:
            store = ledger_store(settings.ledger)
            await store.open()
            try:
                reports = Reports(store)
                if args.command == "costs":
                    return await reports.costs(since, now + 1)
                return await reports.usage(args.group_by, since, now + 1)
            finally:
                await store.aclose()

        _print(asyncio.run(go()), args, args.command)
        return 0

    return run


def add_usage_commands(sub: Any, load: Loader) -> None:
    usage = sub.add_parser("usage", help="usage aggregates from the ledger (like GET /admin/usage)")
    usage.add_argument(
        "--group-by", dest="group_by", default="key_id", choices=["key_id", "user", "team", "model", "day"]
    )
    costs = sub.add_parser("costs", help="spend summary from the ledger (like GET /v1/costs)")
    for p in (usage, costs):
        p.add_argument("--config", help="YAML config file")
        p.add_argument("--days", type=float, default=30.0, help="look back this many days (default 30)")
        p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
        p.set_defaults(func=_report_cmd(load))
