"""The ``retrieve`` tool end to end: with tools and retrieval on, a model that calls ``retrieve`` gets the
passages of its caller's collection (openai SDK, real server, scripted model on loopback); a caller from
another team searching the same name gets a structured ``not_found`` listing its own collections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from tests.support.gateway_server import GatewayProcess, gateway_server
from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.slow
ADMIN = "th-retrieve-tool-admin"
LEAVE = "# Leave\nEmployees get 25 days of paid leave per year. Unused days expire at the end of March."
TRAVEL = "# Travel\nTrain tickets are reimbursed within 30 days. Flights need a manager's approval."


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    m = ScriptedModel().start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def server(model: ScriptedModel) -> Iterator[GatewayProcess]:
    config = {
        "auth": {"admin_key_env": "TH_RETRIEVE_ADMIN"},
        "embedded": {"chat": False, "embeddings": False},
        "models": [
            {"name": "scripted", "provider": "openai", "api_base": f"{model.base_url}/v1", "model": "s"}
        ],
        "tools": {"enabled": True},
    }
    with gateway_server(config, {"TH_RETRIEVE_ADMIN": ADMIN}) as gw:
        yield gw


def _key(gw: GatewayProcess, team: str) -> str:
    r = httpx.post(
        f"{gw.root}/admin/keys",
        json={"name": team, "team": team},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    r.raise_for_status()
    key: str = r.json()["key"]
    return key


def _ask(gw: GatewayProcess, key: str) -> Any:
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=60)
    return sdk.chat.completions.create(
        model="scripted",
        messages=[{"role": "user", "content": "SCRIPT:retrieve"}],
        tools=[{"type": "tollhouse", "name": "retrieve"}],  # type: ignore[list-item]
    )


def test_the_model_reads_its_callers_collection(server: GatewayProcess, model: ScriptedModel) -> None:
    red = _key(server, "red")
    with httpx.Client(base_url=server.base_url, headers={"authorization": f"Bearer {red}"}, timeout=60) as c:
        assert c.post("/collections", json={"name": "handbook"}).status_code == 201
        for doc_id, text in (("leave", LEAVE), ("travel", TRAVEL)):
            r = c.post(
                "/collections/handbook/documents", json={"id": doc_id, "text": text, "kind": "markdown"}
            )
            assert r.status_code == 201, r.text
    n = len(model.requests)
    r = _ask(server, red)
    [used] = (r.model_extra or {})["tools_used"]
    assert (used["name"], used["status"]) == ("retrieve", "ok")
    tool_message = model.requests[n + 1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("[1] document leave, chunk 0")
    assert "25 days of paid leave" in tool_message["content"]
    assert r.choices[0].message.content is not None and "25 days" in r.choices[0].message.content

    blue = _key(server, "blue")  # another team: the same name is not theirs
    r = _ask(server, blue)
    [used] = (r.model_extra or {})["tools_used"]
    assert used["status"] == "not_found"
    assert "no collection named 'handbook'" in used["result"] and "this caller has: none" in used["result"]
    assert "25 days" not in str(r.model_extra)
