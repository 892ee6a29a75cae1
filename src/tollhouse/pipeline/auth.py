"""Authentication stage: credential → Principal.

The pass-through ``OpenAccess`` admits everyone as the anonymous principal.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from tollhouse.errors import AuthenticationFailed
from tollhouse.types import Principal, RequestContext


class Authenticator(Protocol):
    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        """Return who is calling; raise ``AuthenticationFailed`` (401) or ``PermissionDenied`` (403)."""
        ...


class AdminKeyAuth:
    """Accepts exactly one key (the admin key from the environment), compared in constant time."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()
        self._principal = Principal(key_id="admin", anonymous=False)

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        if not credential:
            raise AuthenticationFailed(
                "Missing API key. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
            )
        if not hmac.compare_digest(credential.encode(), self._key):
            raise AuthenticationFailed("Incorrect API key provided.")
        return self._principal


class OpenAccess:
    """No keys configured: every caller is the anonymous principal (safe only on loopback)."""

    _ANON = Principal()

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        return self._ANON
