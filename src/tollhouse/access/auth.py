"""Key authentication: issued keys from the in-memory ``KeyCache`` (no I/O) and the admin key."""

from __future__ import annotations

import hmac
import time

from tollhouse.access.keys import KeyCache
from tollhouse.errors import AuthenticationFailed
from tollhouse.types import Principal, RequestContext

_ANONYMOUS = Principal()
_MISSING = "Missing API key. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."


class KeyAuth:
    """Issued keys from the cache (no I/O), plus the admin key when one is set. While no key was ever
    created and no admin key is set, callers are anonymous (``tollhouse serve`` allows that on loopback only).
    """

    def __init__(self, cache: KeyCache, admin_key: str | None) -> None:
        self.cache = cache
        self._admin = admin_key.encode() if admin_key else None
        self._admin_principal = Principal(key_id="admin", anonymous=False)

    @property
    def configured(self) -> bool:
        """Whether any API key exists (then every request needs a key)."""
        return self.cache.configured

    async def authenticate(self, ctx: RequestContext, credential: str | None) -> Principal:
        if self._admin is None and not self.cache.configured:
            # Open mode: whatever key a client sends (SDKs insist on one) is ignored, as before keys existed.
            return _ANONYMOUS
        if not credential:
            raise AuthenticationFailed(_MISSING)
        entry = self.cache.lookup(credential)
        if entry is not None:
            if entry.revoked:
                raise AuthenticationFailed("This API key has been revoked.", code="key_revoked")
            if entry.expires_at is not None and entry.expires_at <= time.time():
                raise AuthenticationFailed("This API key has expired.", code="key_expired")
            self.cache.note_used(entry.key_id)
            return entry.principal
        if self._admin is not None and hmac.compare_digest(credential.encode(), self._admin):
            return self._admin_principal
        raise AuthenticationFailed("Incorrect API key provided.")
