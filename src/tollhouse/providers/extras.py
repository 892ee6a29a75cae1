"""Vendor extras: the request fields OpenAI does not define (``ChatRequest.vendor``) that a deployment's
``extra_params`` allows. Allowed ones are passed on; the rest are logged (names only) and dropped."""

from __future__ import annotations

import logging
from typing import Any

_log = logging.getLogger("tollhouse.providers")


def allowed(vendor: dict[str, Any], allow: frozenset[str], deployment: str) -> dict[str, Any]:
    """The fields of ``vendor`` this deployment passes on; logs the names of the ones it drops."""
    if not vendor:
        return vendor
    kept = {k: v for k, v in vendor.items() if k in allow}
    if len(kept) != len(vendor):
        dropped = sorted(k for k in vendor if k not in allow)
        _log.info(
            "dropped request fields the deployment does not allow",
            extra={"fields": dropped, "deployment": deployment},
        )
    return kept
