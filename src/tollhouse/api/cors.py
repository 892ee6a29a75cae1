"""CORS for browser apps (``server.cors``). Installed outermost, so every answer — including the errors
the middleware below writes itself (413, 503) — carries the headers, and a preflight is answered here
without reaching FastAPI, the request-id middleware or the hot routes (ADR 0015). Not installed at all
while no origin is allowed: then ``OPTIONS`` is a 405 like any other unknown method."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from tollhouse.config.cors import CorsSettings


def install(app: FastAPI, cfg: CorsSettings) -> None:
    """Call after every other ``add_middleware`` (the last one added is the outermost)."""
    if not cfg.enabled:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cfg.allow_origins,
        allow_methods=cfg.allow_methods,
        allow_headers=cfg.allow_headers,
        allow_credentials=cfg.allow_credentials,
        expose_headers=cfg.expose_headers,
        max_age=cfg.max_age_s,
    )
