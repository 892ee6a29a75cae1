"""What every dashboard page shares: the template environment, the security headers, the signed-in
operator, CSRF checks on every change and the audit log of changes.

Headers on every answer: a strict Content-Security-Policy (scripts, styles, images and connections from the
gateway only — no inline script, no inline style, no frames), ``X-Content-Type-Options``,
``Referrer-Policy: same-origin`` and ``Cache-Control: no-store`` on pages (they hold operator data).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollhouse.errors import TollhouseError
from tollhouse.runtime import Runtime
from tollhouse.stores.dashboard import AuditEntry, UiStore
from tollhouse.stores.ledger_views import LedgerViews, ledger_views
from tollhouse.tasks import cancel
from tollhouse.ui.auth import Sessions, Signed, csrf_ok
from tollhouse.ui.rollup import Rollup
from tollhouse.ui.tail import Tail

log = logging.getLogger("tollhouse.ui")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
MAX_FORM_BYTES = 64 * 1024


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def usd(v: float | None) -> str:
    if v is None:
        return "—"
    if v and abs(v) < 0.01:
        return f"${v:.6f}".rstrip("0")
    return f"${v:,.2f}"


def num(v: float | int | None, places: int = 0) -> str:
    if v is None:
        return "—"
    return f"{v:,.{places}f}"


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("tollhouse.ui", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, usd=usd, num=num)
    return env


class Form:
    """A parsed ``application/x-www-form-urlencoded`` body."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self._data = data

    def get(self, name: str, default: str = "") -> str:
        values = self._data.get(name)
        return values[-1].strip() if values else default

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self._data.get(name, []) if v.strip()]

    def __contains__(self, name: str) -> bool:
        return name in self._data


class Dashboard:
    """The dashboard's state: its store, sessions, tail and templates, and the gateway's runtime (read from
    the parent app once its lifespan has opened it)."""

    def __init__(self, store: Callable[[], UiStore], tail: Tail, runtime: Callable[[], Runtime]) -> None:
        self._make_store = store
        self._store: UiStore | None = None
        self._sessions: Sessions | None = None
        self.tail = tail
        self.rollup = Rollup()
        self._runtime = runtime
        self.env = _env()
        self._warming: asyncio.Task[None] | None = None
        self._open_lock = asyncio.Lock()

    async def ensure_open(self) -> None:
        """Open the store once, on first use (a page, or a change made through the admin API). Raises
        ``ConfigError`` / ``TollhouseError`` while it cannot open; the next use tries again."""
        if self._store is not None:
            return
        async with self._open_lock:
            if self._store is None:
                await self.open()

    async def open(self) -> None:
        """Open the store, and read the last 30 days into the hourly rollup in the background (so the
        first Overview after a restart is as fast as the next)."""
        store = self._make_store()  # raises ConfigError when its settings are incomplete
        await store.open()
        self._store, self._sessions = store, Sessions(store)
        views = ledger_views(self.runtime.reports.store)
        if views is not None:
            self._warming = asyncio.create_task(self._warm(views), name="tollhouse-ui-rollup")

    async def _warm(self, views: LedgerViews) -> None:
        now = time.time()
        try:
            await self.rollup.hours_between(views, now - 30 * 86400, now)
        except Exception:
            log.warning("dashboard: could not pre-read the ledger's last 30 days", exc_info=True)

    @property
    def store(self) -> UiStore:
        if self._store is None:
            raise RuntimeError("the dashboard store is not open")
        return self._store

    @property
    def sessions(self) -> Sessions:
        if self._sessions is None:
            raise RuntimeError("the dashboard store is not open")
        return self._sessions

    async def aclose(self) -> None:
        await cancel(self._warming)
        if self._store is not None:
            await self._store.aclose()

    @property
    def runtime(self) -> Runtime:
        return self._runtime()

    def page(self, request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        signed: Signed | None = request.scope.get("state", {}).get("ui_signed")
        html = self.env.get_template(template).render(
            signed=signed,
            csrf=signed.csrf if signed else "",
            path=request.url.path,
            now=time.time(),
            recent=self.tail.latest(20),
            **context,
        )
        return HTMLResponse(html, status_code=code, headers={"cache-control": "no-store"})

    async def audit(self, signed: Signed, action: str, target: str, **detail: Any) -> None:
        """Record a change (never a secret: callers pass ids, names and limits only)."""
        await self.store.audit(AuditEntry(time.time(), signed.who, action, target, detail))
        log.info("dashboard change", extra={"who": signed.who, "action": action, "target": target})

    async def audit_api(self, who: str, action: str, target: str, **detail: Any) -> None:
        """Record a change made through the admin API. The change has happened: a store that cannot
        record it is logged as an error, never turned into a failed answer."""
        try:
            await self.ensure_open()
            await self.store.audit(AuditEntry(time.time(), who, action, target, detail))
        except Exception:
            log.error(
                "audit log: could not record an admin API change",
                extra={"who": who, "action": action, "target": target},
                exc_info=True,
            )


async def read_form(request: Request) -> Form:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormError("The form is too large.")
    try:
        return Form(parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise FormError("The form is not UTF-8.") from None


class FormError(ValueError):
    """A form that cannot be read or fails validation: shown to the operator with a 400."""


Handler = Callable[[Request, Dashboard, Signed], Awaitable[Response]]
ChangeHandler = Callable[[Request, Dashboard, Signed, Form], Awaitable[Response]]


def signed_in(dash: Dashboard, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in operators; others are sent to the sign-in page."""

    async def endpoint(request: Request) -> Response:
        signed = await dash.sessions.current(request)
        if signed is None:
            if request.headers.get("accept", "").startswith("text/event-stream"):
                return Response("Sign in first.", status_code=401)
            return RedirectResponse("/ui/login", status_code=303)
        request.scope.setdefault("state", {})["ui_signed"] = signed
        try:
            return await handler(request, dash, signed)
        except FormError as exc:
            return dash.page(request, "error.html", 400, message=str(exc))
        except TollhouseError as exc:
            return dash.page(request, "error.html", exc.status, message=str(exc))

    return endpoint


def change(dash: Dashboard, handler: ChangeHandler) -> Callable[[Request], Awaitable[Response]]:
    """A POST that changes something: signed in, same origin, CSRF token matching the session's."""

    async def endpoint(request: Request) -> Response:
        signed = await dash.sessions.current(request)
        if signed is None:
            return Response("Sign in first.", status_code=401, media_type="text/plain")
        request.scope.setdefault("state", {})["ui_signed"] = signed
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return _forbidden(dash, request, "The request came from another site (Origin does not match).")
        try:
            form = await read_form(request)
        except FormError as exc:
            return dash.page(request, "error.html", 400, message=str(exc))
        if not csrf_ok(signed.csrf, form.get("csrf") or request.headers.get("x-csrf-token")):
            return _forbidden(dash, request, "The form's CSRF token is missing or wrong: reload the page.")
        try:
            return await handler(request, dash, signed, form)
        except FormError as exc:
            return dash.page(request, "error.html", 400, message=str(exc))
        except TollhouseError as exc:
            return dash.page(request, "error.html", exc.status, message=str(exc))

    return endpoint


def _forbidden(dash: Dashboard, request: Request, message: str) -> Response:
    log.warning("dashboard change refused", extra={"reason": message, "path": request.url.path})
    return dash.page(request, "error.html", 403, message=message)
