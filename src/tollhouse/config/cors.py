"""``server.cors``: which browser origins may call the gateway (off by default)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from tollhouse.config.base import Strict

# scheme://host[:port], nothing after: the form a browser sends in ``Origin``.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
# The headers a browser app needs to read from our answers (request id, cost, routing, limits).
DEFAULT_EXPOSE = [
    "x-request-id",
    "server-timing",
    "retry-after",
    *(f"x-tollhouse-{h}" for h in ("cost-usd", "deployment", "attempts", "route", "overhead-ms")),
    *(f"x-tollhouse-cache{h}" for h in ("", "-saved-usd", "-similarity", "-ttl")),
    "x-tollhouse-idempotent-replay",
    *(f"x-ratelimit-{w}-{k}" for w in ("limit", "remaining", "reset") for k in ("requests", "tokens")),
]


class CorsSettings(Strict):
    """Cross-origin requests from browser apps. Off while ``allow_origins`` is empty: then a preflight
    (``OPTIONS``) is a 405 like any other unknown method."""

    allow_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed to call the gateway, e.g. `["https://app.example.com"]`; `["*"]` allows '
        "any origin (not with `allow_credentials`). Empty: CORS off.",
    )
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "OPTIONS"], description="Methods a preflight may ask for."
    )
    allow_headers: list[str] = Field(
        default_factory=lambda: [
            "authorization",
            "content-type",
            "x-api-key",
            "x-request-id",
            "idempotency-key",
            "traceparent",
        ],
        description="Request headers a preflight may ask for (`*`: any).",
    )
    expose_headers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXPOSE),
        description="Response headers the browser lets the app read.",
    )
    allow_credentials: bool = Field(
        False, description="Allow cookies / HTTP auth on cross-origin requests (needs explicit origins)."
    )
    max_age_s: int = Field(
        600, ge=0, le=86400, description="How long a browser may cache a preflight answer."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        out = []
        for origin in v:
            o = origin.strip().rstrip("/")
            if o != "*" and not _ORIGIN.match(o):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], e.g. https://app.example.com"
                )
            out.append(o)
        return out

    @field_validator("allow_methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        out = [m.strip().upper() for m in v]
        bad = [m for m in out if m not in _METHODS and m != "*"]
        if bad:
            raise ValueError(f"unknown HTTP method(s) {bad}; use some of {sorted(_METHODS)}")
        return out

    @model_validator(mode="after")
    def _credentials_need_origins(self) -> CorsSettings:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError('allow_credentials: true needs explicit origins, not "*" (browsers refuse it)')
        return self
