"""Server-side tools end to end: the official ``openai`` SDK against a real Tollhouse server whose model is a
scripted fake on loopback that calls tools (single, parallel, chained, invalid arguments, unknown tool,
permission denied, timeout, a loop of identical calls, a client tool), an HTTP tool, an MCP server started by
the gateway as a subprocess over stdio, and one served over streamable HTTP.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.mock_upstream import free_port, start_process, stop
from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.slow
KEY = "th-tools-admin-key"
MCP_SERVER = str(Path(__file__).resolve().parents[1] / "support" / "mcp_tools_server.py")


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    m = ScriptedModel().start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def remote_mcp() -> Iterator[str]:
    port = free_port()
    proc, base = start_process([sys.executable, MCP_SERVER, "http", str(port)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"{base}/mcp"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(model: ScriptedModel, remote_mcp: str) -> Iterator[GatewayProcess]:
    host = model.base_url.removeprefix("http://")
    config = {
        "auth": {"admin_key_env": "TH_TOOLS_KEY"},
        "ledger": {"flush_interval_s": 0.05},
        "models": [
            {"name": "scripted", "provider": "openai", "api_base": f"{model.base_url}/v1", "model": "s"}
        ],
        "guardrails": {"input": [{"rule": "injection", "mode": "redact"}]},
        "tools": {
            "enabled": True,
            "builtin_scope": {"convert_time": {"teams": ["ops"]}},
            "http_allowed_hosts": [host],
            "http": [
                {
                    "name": "weather",
                    "description": "Weather in a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                    "url": f"{model.base_url}/weather/{{city}}",
                    "response_path": "$.data.summary",
                },
                {
                    "name": "slow_api",
                    "description": "A slow service.",
                    "url": f"{model.base_url}/slow",
                    "timeout_s": 0.5,
                },
            ],
            "mcp": [
                {
                    "name": "files",
                    "transport": "stdio",
                    "command": sys.executable,
                    "args": [MCP_SERVER, "stdio"],
                },
                {"name": "remote", "transport": "http", "url": remote_mcp},
            ],
        },
    }
    with gateway_server(config, {"TH_TOOLS_KEY": KEY}) as gw:
        yield gw


@pytest.fixture
def sdk(server: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60)


def gateway_tools(*names: str) -> Any:
    return [{"type": "tollhouse", "name": n} for n in names]


def ask(sdk: openai.OpenAI, script: str, tools: Any, **kw: Any) -> Any:
    return sdk.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": f"SCRIPT:{script}"}], tools=tools, **kw
    )


def used(resp: Any) -> list[dict[str, Any]]:
    extra = resp.model_extra or {}
    return list(extra["tools_used"])


def sent(model: ScriptedModel, since: int) -> list[dict[str, Any]]:
    return model.requests[since:]


def test_single_call_answers_with_the_result(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    r = ask(sdk, "single", gateway_tools("calculator"))
    assert r.choices[0].message.content == "The answer is 14."
    assert r.choices[0].finish_reason == "stop"
    [u] = used(r)
    assert (u["name"], u["status"], u["result"], u["round"]) == ("calculator", "ok", "14", 1)
    assert orjson.loads(u["arguments"]) == {"expression": "2+3*4"}
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (20, 10)
    first, second = sent(model, n)
    assert [t["function"]["name"] for t in first["tools"]] == ["calculator"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["expression"]
    assert second["messages"][-1] == {"role": "tool", "content": "14", "tool_call_id": "call_0_0"}


def test_parallel_calls_run_and_return_in_order(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "parallel", gateway_tools("calculator", "convert_units"))
    assert r.choices[0].message.content == "Both: 42 | 5000 m."
    assert [(u["name"], u["status"]) for u in used(r)] == [("calculator", "ok"), ("convert_units", "ok")]


def test_chained_calls_use_earlier_results(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "chained", gateway_tools("calculator"))
    assert r.choices[0].message.content == "Half of 42 is 42 | 21."
    assert [u["round"] for u in used(r)] == [1, 2]
    assert r.usage is not None and r.usage.prompt_tokens == 30


def test_invalid_arguments_are_returned_for_one_repair(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "invalid", gateway_tools("calculator"))
    first, second = used(r)
    assert first["status"] == "invalid_arguments" and "correct the arguments" in first["result"]
    assert second["status"] == "ok"
    assert r.choices[0].message.content is not None and r.choices[0].message.content.endswith("| 2.")


def test_a_second_schema_failure_ends_the_loop(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    r = ask(sdk, "invalid_twice", gateway_tools("calculator"))
    assert [u["status"] for u in used(r)] == ["invalid_arguments", "invalid_arguments"]
    assert sent(model, n)[-1]["tool_choice"] == "none"
    assert r.choices[0].message.content == "Stopped after 2 tool results."


def test_arguments_that_are_not_json(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "bad_json", gateway_tools("calculator"))
    assert used(r)[0]["status"] == "invalid_arguments"
    assert "not valid JSON" in (r.choices[0].message.content or "")


def test_unknown_tool_is_an_error_the_model_sees(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "unknown", gateway_tools("calculator"))
    assert used(r)[0]["status"] == "unknown_tool"
    assert "no tool named 'weather_lookup'" in (r.choices[0].message.content or "")


def test_permission_denied_for_a_scoped_tool(
    sdk: openai.OpenAI, model: ScriptedModel, server: GatewayProcess
) -> None:
    n = len(model.requests)
    r = ask(sdk, "denied", gateway_tools("calculator", "convert_time"))
    assert used(r)[0]["status"] == "permission_denied"
    assert [t["function"]["name"] for t in sent(model, n)[0]["tools"]] == ["calculator"]  # not shown
    made = httpx.post(
        f"{server.root}/admin/keys",
        json={"name": "ops", "team": "ops"},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert made.status_code == 201, made.text
    ops = openai.OpenAI(base_url=server.base_url, api_key=made.json()["key"], max_retries=0, timeout=60)
    r = ask(ops, "denied", gateway_tools("convert_time"))
    assert used(r)[0]["status"] == "ok"
    assert "2026-01-01T09:00:00+00:00" in (r.choices[0].message.content or "")


def test_http_tool_selects_with_jsonpath(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "http", gateway_tools("weather"))
    assert r.choices[0].message.content == "Weather: sunny in Paris."


def test_tool_timeout_is_an_error_not_a_500(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "timeout", gateway_tools("slow_api"))
    [u] = used(r)
    assert u["status"] == "timeout"
    assert '"code":"timeout"' in (r.choices[0].message.content or "")


def test_identical_calls_stop_the_loop(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    r = ask(sdk, "loop", gateway_tools("calculator"))
    assert [u["status"] for u in used(r)] == ["ok", "repeated_call"]
    calls = sent(model, n)
    assert len(calls) == 3 and calls[-1]["tool_choice"] == "none"
    assert r.choices[0].message.content == "Stopped after 2 tool results."


def test_client_tools_go_back_to_the_client(sdk: openai.OpenAI) -> None:
    client_tool = {"type": "function", "function": {"name": "get_location", "parameters": {"type": "object"}}}
    r = ask(sdk, "client", [client_tool, *gateway_tools("calculator")])
    calls = r.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_location"]
    assert r.choices[0].finish_reason == "tool_calls"
    assert [(u["name"], u["status"]) for u in used(r)] == [("calculator", "skipped")]


def test_tool_choice_naming_a_gateway_tool_opts_in(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    r = ask(sdk, "single", None, tool_choice={"type": "function", "function": {"name": "calculator"}})
    assert r.choices[0].message.content == "The answer is 14."
    first, second = sent(model, n)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "calculator"}}
    assert second["tool_choice"] == "auto"  # forced once, not forever


def test_tool_results_pass_the_injection_guardrail(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    ask(sdk, "injection", gateway_tools("weather"))
    result = sent(model, n)[1]["messages"][-1]["content"]
    assert result.startswith("[gateway notice")


def test_mcp_tool_over_stdio(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    r = ask(sdk, "mcp", gateway_tools("files__shout"))
    assert r.choices[0].message.content == "MCP said HELLO!."
    tool = sent(model, n)[0]["tools"][0]["function"]
    assert tool["description"] == "Return the text in capitals."
    assert tool["parameters"]["required"] == ["text"]


def test_mcp_tool_over_streamable_http(sdk: openai.OpenAI) -> None:
    r = ask(sdk, "mcp_http", gateway_tools("remote__add"))
    assert r.choices[0].message.content == "Remote sum 42."


def test_unknown_gateway_tool_is_a_400(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        ask(sdk, "single", gateway_tools("no_such_tool"))
    assert "Unknown gateway tool 'no_such_tool'" in str(e.value)


def test_stream_sends_progress_the_sdk_skips(sdk: openai.OpenAI, server: GatewayProcess) -> None:
    stream = ask(
        sdk, "single", gateway_tools("calculator"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The answer is 14."
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 20
    raw = httpx.post(
        f"{server.base_url}/chat/completions",
        json={
            "model": "scripted",
            "stream": True,
            "messages": [{"role": "user", "content": "SCRIPT:single"}],
            "tools": gateway_tools("calculator"),
        },
        headers={"authorization": f"Bearer {KEY}"},
        timeout=60,
    ).text
    progress = [line for line in raw.splitlines() if line.startswith(": tollhouse-tool ")]
    event = orjson.loads(progress[0].removeprefix(": tollhouse-tool "))
    assert (event["name"], event["status"], event["round"]) == ("calculator", "ok", 1)


def test_requests_without_gateway_tools_are_untouched(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    n = len(model.requests)
    r = ask(sdk, "none", openai.NOT_GIVEN)
    assert r.choices[0].message.content == "No tools needed."
    assert "tools_used" not in (r.model_extra or {})
    assert "tools" not in sent(model, n)[0]


def test_embedded_model_calls_a_gateway_tool_under_its_grammar(sdk: openai.OpenAI) -> None:
    """The embedded llama.cpp model, forced to call the calculator: its grammar makes the arguments follow
    the tool's schema, the gateway runs the call and asks the model again for the answer."""
    r = sdk.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Use the calculator: what is 12 times 7?"}],
        tools=gateway_tools("calculator"),
        tool_choice={"type": "function", "function": {"name": "calculator"}},
        max_tokens=48,
        temperature=0,
    )
    first = used(r)[0]
    assert first["name"] == "calculator" and first["round"] == 1
    assert isinstance(orjson.loads(first["arguments"])["expression"], str)  # schema-shaped by the grammar
    assert first["status"] in {"ok", "invalid_expression", "math_error"}
    assert r.choices[0].message.tool_calls is None
    assert r.usage is not None and r.usage.prompt_tokens > 0


def test_ledger_has_a_line_item_per_tool_call(sdk: openai.OpenAI, server: GatewayProcess) -> None:
    ask(sdk, "parallel", gateway_tools("calculator", "convert_units"))
    auth = {"authorization": f"Bearer {KEY}"}
    rows: dict[str, Any] = {}
    for _ in range(100):
        out = httpx.get(f"{server.root}/admin/usage", params={"group_by": "model"}, headers=auth).json()
        rows = {r["model"]: r for r in out["data"]}
        if "convert_units" in rows:
            break
        time.sleep(0.05)
    assert rows["convert_units"]["requests"] >= 1 and rows["convert_units"]["cost_usd"] == 0
    assert rows["calculator"]["requests"] >= 1


def test_anthropic_sdk_uses_gateway_tools(server: GatewayProcess) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=server.root, api_key=KEY, max_retries=0, timeout=60)
    tools: Any = gateway_tools("calculator")
    msg = client.messages.create(
        model="scripted", max_tokens=64, messages=[{"role": "user", "content": "SCRIPT:single"}], tools=tools
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "The answer is 14."
    assert [u["status"] for u in (msg.model_extra or {})["tools_used"]] == ["ok"]
    with client.messages.stream(
        model="scripted", max_tokens=64, messages=[{"role": "user", "content": "SCRIPT:single"}], tools=tools
    ) as stream:
        assert stream.get_final_text() == "The answer is 14."
