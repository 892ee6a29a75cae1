"""Changes made with the command line go to the audit log the dashboard shows (``/ui/audit``), beside the
dashboard's and the admin API's: who (``cli <os user>@<host>``), what, when.

The command writes to the stores directly, so it writes its audit entry too. The change has happened by
then: an audit store that cannot be reached is a warning on stderr, never a failed command."""

from __future__ import annotations

import contextlib
import getpass
import socket
import sys
import time
from typing import Any

from tollhouse.settings import Settings
from tollhouse.stores.build import dashboard_store
from tollhouse.stores.dashboard import AuditEntry


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (e.g. a container with an unnamed uid)
        user = "unknown"
    return f"cli {user}@{socket.gethostname()}"


async def record(settings: Settings, action: str, target: str, **detail: Any) -> None:
    """One audit entry for a change the command made."""
    store = dashboard_store(settings.ledger)
    try:
        await store.open()
        await store.audit(AuditEntry(time.time(), who(), action, target, detail))
    except Exception as exc:
        print(f"tollhouse: warning: done, but not written to the audit log: {exc}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):  # closing a store that never opened
            await store.aclose()
