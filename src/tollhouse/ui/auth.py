"""Dashboard sign-in: the admin key or a dashboard user's password, a server-side session behind an
``HttpOnly`` + ``SameSite=Strict`` cookie (``Secure`` when served over TLS), a CSRF token per session.

Passwords are hashed with scrypt (stdlib, memory-hard, per-user salt). The cookie holds 256 random bits;
the store keeps only their SHA-256. Failed sign-ins are counted per client address and refused for a while
after ``MAX_FAILURES`` (a brute-force brake; the admin key itself is 256 bits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from tollhouse.stores.dashboard import Session, UiStore, User

COOKIE = "th_session"
LOGIN_COOKIE = "th_login"  # the sign-in form's CSRF token (double submit: there is no session yet)
SESSION_S = 12 * 3600
MAX_FAILURES = 10
FAILURE_WINDOW_S = 300.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=8, p=1)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ui",
        httponly=True,
        secure=is_tls(request),
        samesite="strict",
    )


@dataclass(slots=True)
class Signed:
    """The signed-in operator of one request."""

    who: str  # "admin", "user:<name>", or "local" (open mode)
    csrf: str
    token_hash: str

    @property
    def is_admin(self) -> bool:
        return self.who in ("admin", "local")


class Throttle:
    """Failed sign-ins per client address within ``FAILURE_WINDOW_S`` (this process)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str, now: float) -> bool:
        q = self._failures.get(client)
        while q and q[0] < now - FAILURE_WINDOW_S:
            q.popleft()
        return q is not None and len(q) >= MAX_FAILURES

    def failed(self, client: str, now: float) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()  # bounded memory under a spray of addresses
        self._failures.setdefault(client, deque()).append(now)

    def cleared(self, client: str) -> None:
        self._failures.pop(client, None)


class Sessions:
    def __init__(self, store: UiStore) -> None:
        self.store = store
        self.throttle = Throttle()

    async def verify(self, admin_key: str | None, username: str, secret: str) -> str | None:
        """Who these credentials sign in (``admin`` or ``user:<name>``), or None."""
        if not username:
            if admin_key and hmac.compare_digest(secret.encode(), admin_key.encode()):
                return "admin"
            return None
        user: User | None = await self.store.user(username)
        if user is not None and check_password(secret, user.password_hash):
            return f"user:{user.name}"
        return None

    async def start(self, who: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(token_hash(token), who, secrets.token_urlsafe(32), now, now + SESSION_S)
        await self.store.put_session(session)
        return token, session

    async def current(self, request: Request) -> Signed | None:
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 200:
            return None
        h = token_hash(token)
        session = await self.store.session(h, time.time())
        return None if session is None else Signed(session.who, session.csrf, h)

    async def end(self, signed: Signed) -> None:
        await self.store.delete_session(signed.token_hash)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
