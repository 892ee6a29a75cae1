"""A PostgreSQL with pgvector for the tests: the server that the ``pgserver`` package bundles (PostgreSQL 16
and pgvector), started by its own ``initdb`` / ``pg_ctl`` on a free loopback TCP port in a throwaway data
directory, stopped at the end of the session.

When it cannot be started (the package is missing, the platform has no wheel) the tests that need it skip
with the reason, or fail when ``TOLLHOUSE_REQUIRE_PGVECTOR=1`` (CI, where it is known to work).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REQUIRED = os.environ.get("TOLLHOUSE_REQUIRE_PGVECTOR") == "1"
USER = "pgserver"  # PostgreSQL refuses to run as root: the system user pgserver itself uses then


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"PostgreSQL with pgvector (pgserver) is required but {reason}")
    pytest.skip(f"PostgreSQL with pgvector (pgserver) unavailable: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(data: Path) -> str | None:
    """Root: run the server as an unprivileged user owning ``data`` (pgserver's own helpers)."""
    if os.geteuid() != 0:
        return None
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    entry = ensure_user_exists(USER)
    assert entry is not None
    ensure_prefix_permissions(data)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    return USER


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[str]:
    """The DSN (database ``postgres``, user ``postgres``, trust) of a running PostgreSQL with pgvector."""
    try:
        with warnings.catch_warnings():  # its import looks for a runtime directory it will not use here
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        unavailable(f"the pgserver package cannot be imported ({exc}); it is in the dev extra")
    root = Path(tempfile.mkdtemp(prefix="tollhouse-pgvector-"))
    data = root / "data"
    data.mkdir()
    port = _free_port()
    try:
        user = _as_user(data)
        run = {"user": user, "check": True, "capture_output": True, "text": True, "timeout": 120}
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "utf8",
            ],
            **run,  # type: ignore[call-overload]
        )
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
                "-o", f"-h 127.0.0.1 -p {port} -k {data}", "start",
            ],
            **run,  # type: ignore[call-overload]
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log = data / "log"
        if log.exists():
            detail += log.read_text()[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"its server did not start: {exc} {detail}".strip())
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"],
            user=user,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pgvector_dsn(pgvector_server: str) -> Iterator[str]:
    """A DSN on the pgvector server whose search_path is a schema of its own (dropped afterwards, with the
    extension the store creates in it)."""
    import asyncio

    import asyncpg

    schema = f"th_test_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(pgvector_server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # callers may be inside a running event loop
        pool.submit(asyncio.run, run(f"CREATE SCHEMA {schema}")).result()
        try:
            yield f"{pgvector_server}?search_path={schema}"
        finally:
            pool.submit(asyncio.run, run(f"DROP SCHEMA {schema} CASCADE")).result()
