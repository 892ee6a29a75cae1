"""Authentication stage: credential → Principal.

The pass-through ``OpenAccess`` admits everyone as the anonymous principal; ``access.auth.KeyAuth`` checks
issued keys and the admin key.
"""

from __future__ import annotations

from typing import Protocol

from tollhouse.types import Principal, RequestContext


class Authenticator(Protocol):
    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        """Return who is calling; raise ``AuthenticationFailed`` (401) or ``PermissionDenied`` (403)."""
        ...


class OpenAccess:
    """No keys configured: every caller is the anonymous principal (safe only on loopback)."""

    _ANON = Principal()

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        return self._ANON
