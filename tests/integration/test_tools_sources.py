"""Tool sources against real servers on loopback: an MCP server started as a subprocess over stdio (listed,
called, its list re-read when it says it changed, namespaced and scoped), and HTTP tools (JSONPath, the host
allowlist, the response size cap)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tollhouse.config.tools import HttpToolConfig, McpServerConfig, ToolScope
from tollhouse.tools.base import ToolFailure
from tollhouse.tools.http import HttpTools, parse_path
from tollhouse.tools.mcp import McpServer, namespaced
from tollhouse.tools.registry import ToolRegistry
from tollhouse.types import Principal

MCP_SERVER = str(Path(__file__).resolve().parents[1] / "support" / "mcp_tools_server.py")


async def test_mcp_stdio_server_is_discovered_called_and_followed() -> None:
    reg = ToolRegistry()
    cfg = McpServerConfig(
        name="files",
        transport="stdio",
        command=sys.executable,
        args=[MCP_SERVER, "stdio"],
        scope=ToolScope(teams=["ops"]),
    )
    server = McpServer(cfg, reg)
    await server.start(20.0)
    try:
        assert reg.names() == ["files__add", "files__shout", "files__unlock"]
        shout = reg.get("files__shout")
        assert shout is not None and shout.source == "mcp:files"
        assert reg.permitted("files__shout", Principal(team="ops"))
        assert not reg.permitted("files__shout", Principal(team="sales"))
        assert await shout.run({"text": "hi"}) == "HI!"
        add = reg.get("files__add")
        assert add is not None and await add.run({"a": 2, "b": 3}) == "5"
        with pytest.raises(ToolFailure) as e:
            await add.run({"a": "x"})  # the server's own validation: an error result
        assert e.value.code == "tool_error"
        unlock = reg.get("files__unlock")
        assert unlock is not None and await unlock.run({}) == "unlocked"
        for _ in range(200):  # the list_changed notification makes the client list again
            if reg.get("files__secret_word") is not None:
                break
            await asyncio.sleep(0.05)
        secret = reg.get("files__secret_word")
        assert secret is not None and await secret.run({}) == "swordfish"
        assert server.listings >= 2
    finally:
        await server.aclose()
    assert reg.names() == []


def test_namespacing_keeps_names_valid() -> None:
    assert namespaced("srv", "read.file/v2") == "srv__read_file_v2"
    assert len(namespaced("s" * 32, "t" * 80)) == 64


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def data(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"name": request.query.get("q")}]})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://example.invalid/")

    async def echo_auth(request: web.Request) -> web.Response:
        return web.json_response({"auth": request.headers.get("Authorization"), "body": await request.text()})

    app = web.Application()
    app.router.add_route("*", "/auth", echo_auth)
    app.router.add_get("/big", big)
    app.router.add_get("/data", data)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    s = web.TCPSite(runner, "127.0.0.1", 0)
    await s.start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_http_tool_headers_from_the_environment(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TH_TEST_TOOL_TOKEN", "Bearer s3cret")
    tools = HttpTools([site], max_bytes=1000)
    try:
        cfg = HttpToolConfig(
            name="p",
            description="P",
            method="POST",
            url=f"http://{site}/auth",
            headers_env={"Authorization": "TH_TEST_TOOL_TOKEN"},
        )
        out = orjson.loads(await tools.tool(cfg).run({"x": 1}))
        assert out == {"auth": "Bearer s3cret", "body": '{"x":1}'}
    finally:
        await tools.aclose()


async def test_http_tools_limits(site: str) -> None:
    tools = HttpTools([site], max_bytes=1000)
    try:
        q = {"type": "object", "properties": {"q": {"type": "string"}}}
        data = tools.tool(
            HttpToolConfig(
                name="d",
                description="D",
                parameters=q,
                url=f"http://{site}/data?q={{q}}",
                response_path="$.items[0].name",
            )
        )
        # URL-encoded into the template, decoded by the server
        assert await data.run({"q": "a b&c"}) == "a b&c"
        big = tools.tool(HttpToolConfig(name="b", description="B", url=f"http://{site}/big"))
        with pytest.raises(ToolFailure) as e:
            await big.run({})
        assert e.value.code == "result_too_large"
        moved = tools.tool(HttpToolConfig(name="m", description="M", url=f"http://{site}/moved"))
        with pytest.raises(ToolFailure) as e:
            await moved.run({})
        assert e.value.code == "http_error"  # redirects are not followed off the allowlist
        with pytest.raises(ValueError, match=r"not in tools\.http_allowed_hosts"):
            tools.tool(HttpToolConfig(name="x", description="X", url="http://169.254.169.254/latest"))
        host_param = tools.tool(HttpToolConfig(name="h", description="H", url="http://{host}/data"))
        with pytest.raises(ToolFailure) as e:
            await host_param.run({"host": "169.254.169.254"})
        assert e.value.code == "host_not_allowed"
    finally:
        await tools.aclose()


def test_jsonpath_subset() -> None:
    assert parse_path('$.a.b[0]["c d"]') == ["a", "b", 0, "c d"]
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        parse_path("$..a")
