"""The access line written directly (no LogRecord, buffered per loop iteration) is the line the JSON
formatter makes, reaches the stream by the end of the loop iteration and at stop, and none is lost."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tollhouse.app import create_app
from tollhouse.context import request_id_var
from tollhouse.settings import LoggingSettings, Settings
from tollhouse.telemetry import logging as tlog
from tollhouse.telemetry.linewriter import LineWriter


def only_ours() -> None:
    """Drop the handlers pytest's logging plugin adds to the root logger for each test phase."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if isinstance(h, tlog.BufferedHandler)]


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    tlog.configure(LoggingSettings(format="json"))
    yield buf
    tlog.flush()
    logging.getLogger().handlers.clear()
    tlog._json = None


def test_direct_line_equals_the_formatted_record(stderr: io.StringIO) -> None:
    fields = {"method": "POST", "path": "/v1/\x1b[31mx", "status": 200, "latency_ms": 1.5, "stream": False}
    only_ours()
    token = request_id_var.set("rid-1")
    try:
        assert tlog.access_writer() is not None
        direct = orjson.loads(tlog.access_line(fields))
        logging.getLogger("tollhouse.access").info("request", extra=fields)
        tlog.flush()
    finally:
        request_id_var.reset(token)
    via_logging = orjson.loads(stderr.getvalue())
    assert list(direct) == list(via_logging)  # same keys, same order
    del direct["ts"], via_logging["ts"]
    assert direct == via_logging
    assert direct["path"] == "/v1/x" and direct["request_id"] == "rid-1"


def test_other_listeners_get_records(stderr: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    only_ours()
    logging.getLogger().addHandler(caplog.handler)
    assert tlog.access_writer() is None  # caplog's handler listens: the line goes through logging
    logging.getLogger().handlers.remove(caplog.handler)
    logging.getLogger("tollhouse.access").setLevel(logging.WARNING)
    try:
        assert tlog.access_writer() is None  # disabled by level
    finally:
        logging.getLogger("tollhouse.access").setLevel(logging.NOTSET)
    assert tlog.access_writer() is not None


def test_lines_wait_for_the_end_of_the_loop_iteration() -> None:
    out = io.StringIO()
    writer = LineWriter(out)

    async def main() -> tuple[str, str]:
        writer.write("a\n")
        writer.write("b\n")
        before = out.getvalue()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return before, out.getvalue()

    before, after = asyncio.run(main())
    writer.close()
    assert before == "" and after == "a\nb\n"


def test_a_full_buffer_and_warnings_are_written_at_once() -> None:
    out = io.StringIO()
    writer = LineWriter(out, flush_chars=10)

    async def main() -> list[str]:
        seen = []
        writer.write("12345\n")
        seen.append(out.getvalue())
        writer.write("67890\n")  # past 10 characters
        seen.append(out.getvalue())
        writer.write("w\n", now=True)
        seen.append(out.getvalue())
        return seen

    assert asyncio.run(main()) == ["", "12345\n67890\n", "12345\n67890\nw\n"]
    writer.close()


def test_a_failing_stream_drops_lines_without_raising() -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("EPIPE")

    writer = LineWriter(Broken())
    writer.write("x\n")  # no loop: written at once, and fails quietly
    writer.close()
    assert writer._lines == []


def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "models": [{"name": "m", "provider": "mock", "reply": "ok"}],
            "ledger": {"sqlite_path": str(tmp_path / "l.db"), "journal_dir": str(tmp_path / "j")},
            "server": {"allow_unauthenticated": True},
        }
    )


async def test_concurrent_requests_lose_no_line_and_stop_flushes(stderr: io.StringIO, tmp_path: Path) -> None:
    only_ours()
    app = create_app(settings(tmp_path))
    n = 200
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            rs = await asyncio.gather(
                *(
                    client.post("/v1/chat/completions", json=body, headers={"x-request-id": f"r{i}"})
                    for i in range(n)
                )
            )
        assert all(r.status_code == 200 for r in rs)
        assert tlog.access_writer() is not None
    # The lifespan's end flushed everything, "stopped" included, before the loop ran again.
    lines = [orjson.loads(x) for x in stderr.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "tollhouse.access"]
    assert sorted(x["request_id"] for x in access) == sorted(f"r{i}" for i in range(n))
    assert all(x["status"] == 200 and x["path"] == "/v1/chat/completions" for x in access)
    assert lines[-1]["msg"] == "stopped"
