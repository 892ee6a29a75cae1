"""Changes made through the admin API go to the same audit log as the dashboard's (viewable at /ui/audit):
who (the admin key: it has no name), what, when, and from which address."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from tollhouse.api.deps import get_runtime

WHO = "admin API"


async def audit(request: Request, action: str, target: str, **detail: Any) -> None:
    """Record one change; never raises (the change has already happened)."""
    runtime = get_runtime(request)
    if runtime.audit is None:
        return
    client = request.client.host if request.client else None
    await runtime.audit(WHO, action, target, client=client, **detail)
