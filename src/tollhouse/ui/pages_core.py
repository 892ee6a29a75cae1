"""Sign-in and sign-out, the Overview (with its live event stream) and the Requests log."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tollhouse.errors import NotFound, TollhouseError
from tollhouse.stores.ledger_views import LedgerViews, Search, ledger_views
from tollhouse.ui.auth import COOKIE, LOGIN_COOKIE, SESSION_S, Signed, csrf_ok, set_cookie
from tollhouse.ui.overview import WINDOWS, live_stats, overview
from tollhouse.ui.web import Dashboard, Form, FormError, change, read_form, signed_in

STATS_EVERY_S = 2.0
PING_EVERY_S = 15.0


def views_of(dash: Dashboard) -> LedgerViews:
    views = ledger_views(dash.runtime.reports.store)
    if views is None:
        raise NotFound("The usage ledger is off (ledger.enabled: false): the dashboard has no history.")
    return views


# ---- sign-in ----------------------------------------------------------------------------------------------


async def login_page(
    request: Request, dash: Dashboard, error: str | None = None, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = dash.page(
        request,
        "login.html",
        status,
        login_csrf=token,
        error=error,
        admin_key=dash.runtime.admin_key is not None,
        open_mode=dash.runtime.open_mode,
    )
    set_cookie(response, request, LOGIN_COOKIE, token, 3600)
    return response


async def login_form(request: Request, dash: Dashboard) -> Response:
    if await dash.sessions.current(request) is not None:
        return RedirectResponse("/ui/", status_code=303)
    return await login_page(request, dash)


async def login(request: Request, dash: Dashboard) -> Response:
    client = request.client.host if request.client else "?"
    now = time.time()
    try:
        form = await read_form(request)
    except FormError as exc:
        return await login_page(request, dash, str(exc), 400)
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf")):
        return await login_page(request, dash, "The sign-in form expired: try again.", 403)
    if dash.sessions.throttle.blocked(client, now):
        return await login_page(request, dash, "Too many failed sign-ins: wait a few minutes.", 429)
    username, secret = form.get("username"), form.get("secret")
    if form.get("open") == "1" and dash.runtime.open_mode:
        who: str | None = "local"  # open mode: no admin key, no API key, served on loopback only
    else:
        who = await dash.sessions.verify(dash.runtime.admin_key, username, secret) if secret else None
    if who is None:
        dash.sessions.throttle.failed(client, now)
        return await login_page(request, dash, "Wrong admin key, or wrong user name or password.", 401)
    dash.sessions.throttle.cleared(client)
    token, session = await dash.sessions.start(who)
    await dash.audit(Signed(who, session.csrf, session.token_hash), "session.sign_in", who)
    response = RedirectResponse("/ui/", status_code=303)
    set_cookie(response, request, COOKIE, token, SESSION_S)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


async def logout(request: Request, dash: Dashboard, signed: Signed, form: Form) -> Response:
    await dash.sessions.end(signed)
    await dash.audit(signed, "session.sign_out", signed.who)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


# ---- overview ---------------------------------------------------------------------------------------------


async def overview_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    w = WINDOWS.get(request.query_params.get("window", "hour"))
    if w is None:
        return dash.page(request, "error.html", 400, message="window: expected hour, day or month.")
    data = await overview(dash.runtime, views_of(dash), dash.rollup, dash.tail, w)
    series = json.dumps(data["series"], separators=(",", ":")).replace("<", "\\u003c")
    return dash.page(request, "overview.html", windows=WINDOWS, series_json=series, **data)


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def events(request: Request, dash: Dashboard, signed: Signed) -> Response:
    """Server-sent events: ``request`` as each request ends (this process), ``stats`` every few seconds
    (the last hour, from the ledger: every replica)."""
    views = ledger_views(dash.runtime.reports.store)  # None: the ledger is off, the tail still streams
    queue = dash.tail.subscribe()

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            next_stats = 0.0
            next_ping = time.monotonic() + PING_EVERY_S
            while not dash.runtime.draining:
                now = time.monotonic()
                if now >= next_stats:
                    next_stats = now + STATS_EVERY_S
                    if views is not None:
                        try:
                            yield _event("stats", await live_stats(views, dash.tail))
                        except TollhouseError as exc:  # the ledger is unreachable: say so, keep the tail
                            yield _event("unavailable", {"message": str(exc)})
                if now >= next_ping:
                    yield b": ping\n\n"
                    next_ping = now + PING_EVERY_S
                try:
                    item = await asyncio.wait_for(
                        queue.get(), timeout=max(0.05, next_stats - time.monotonic())
                    )
                except TimeoutError:
                    continue
                yield _event("request", item)
        finally:
            dash.tail.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


# ---- requests ---------------------------------------------------------------------------------------------


async def requests_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    q = request.query_params
    status = q.get("status") or None
    if status not in (None, "ok", "error"):
        return dash.page(request, "error.html", 400, message="status: expected ok or error.")
    text = (q.get("q") or "").strip()[:200] or None
    rows = await views_of(dash).search(Search(text=text, status=status, limit=100))
    fragment = request.headers.get("hx-request") == "true"
    return dash.page(
        request,
        "request_rows.html" if fragment else "requests.html",
        rows=rows,
        q=text or "",
        status=status or "",
    )


async def request_page(request: Request, dash: Dashboard, signed: Signed) -> Response:
    rid = request.path_params["request_id"]
    records = await views_of(dash).request(rid)
    live = dash.tail.find(rid)
    if not records and live is None:
        raise NotFound(f"No request with id {rid!r} in the ledger or this process's recent requests.")
    evaluation = None
    store = dash.runtime.telemetry.evaluation
    if store is not None:
        evaluation = await store.store.get(rid)
    return dash.page(
        request,
        "request.html",
        rid=rid,
        records=records,
        live=live,
        evaluation=evaluation,
        timeline=timeline(live),
        guardrails=_guardrails(records),
    )


def _guardrails(records: list[dict[str, Any]]) -> list[list[str]]:
    out: list[list[str]] = []
    for r in records:
        try:
            out += json.loads(r.get("guardrails") or "[]")
        except ValueError:
            continue
    return out


def timeline(live: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The stages of one request laid end to end (x, width in % of the total), for the SVG bars."""
    if live is None:
        return []
    total = max(live["latency_ms"], 1e-6)
    spans = [(name, ms) for name, ms in live["stages"].items()]
    spans.append(("upstream", live["upstream_ms"]))
    out, x = [], 0.0
    for name, ms in spans:
        width = min(100.0 - x, 100.0 * ms / total)
        out.append({"name": name, "ms": ms, "x": round(x, 3), "w": round(max(width, 0.3), 3)})
        x = min(100.0, x + width)
    out.append({"name": "total", "ms": live["latency_ms"], "x": 0.0, "w": 100.0})
    return out


def routes(dash: Dashboard) -> list[Route]:
    async def login_get(request: Request) -> Response:
        return await login_form(request, dash)

    async def login_post(request: Request) -> Response:
        return await login(request, dash)

    return [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", change(dash, logout), methods=["POST"]),
        Route("/", signed_in(dash, overview_page), methods=["GET"]),
        Route("/events", signed_in(dash, events), methods=["GET"]),
        Route("/requests", signed_in(dash, requests_page), methods=["GET"]),
        Route("/requests/{request_id}", signed_in(dash, request_page), methods=["GET"]),
    ]
