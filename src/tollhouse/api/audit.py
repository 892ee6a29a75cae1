"""Changes made through the admin API go to the same audit log as the dashboard's (viewable at /ui/audit):
who (the admin key: it has no name), what, when, and from which address."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

WHO = "admin API"


async def audit(request: Request, action: str, target: str, **detail: Any) -> None:
    """Record one change; never raises (the change has already happened)."""
    dashboard = getattr(request.app.state, "dashboard", None)
    dash = getattr(dashboard, "dash", None)
    if dash is None:
        return
    client = request.client.host if request.client else None
    await dash.audit_api(WHO, action, target, client=client, **detail)
