"""Stored prompts through HTTP (in-process app, mock models): the admin API, prompt references in the body,
metadata and header, model and parameters applied, 4xx naming the problem, experiments, shadow runs,
per-version metrics and an automatic rollback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app
from tollhouse.settings import Settings

ADMIN = "admin-secret-for-prompts"
AUTH = {"authorization": f"Bearer {ADMIN}"}
CHAT = "/v1/chat/completions"
PRICE = {"input_per_1m": 1_000_000, "output_per_1m": 1_000_000}  # $1 per token


def prompt_settings(tmp_path: Path, **prompts: Any) -> Settings:
    base = mock_settings(
        other={"reply": "from other"},
        priced={"pricing": PRICE},
        broken={"fail_status": 500},
        half={"fail_status": 500, "fail_every": 2},
        sometimes={"fail_status": 500, "fail_every": 10},
    ).model_dump()
    base["auth"] = {"admin_key_env": "TH_TEST_PROMPTS_ADMIN"}
    base["routing"] = {"retry": {"max_retries": 0}, "breaker": {"enabled": False}}
    base["prompts"] = {
        "enabled": True,
        "folder": str(tmp_path / "prompts"),
        "reload_interval_s": 0.1,
        "rollback": {"check_interval_s": 0.05, "min_requests": 20},
        **prompts,
    }
    return Settings.model_validate(base)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_TEST_PROMPTS_ADMIN", ADMIN)
    with TestClient(create_app(prompt_settings(tmp_path)), raise_server_exceptions=False) as c:
        r = c.post("/admin/keys", json={"name": "app"}, headers=AUTH)
        c.headers["authorization"] = f"Bearer {r.json()['key']}"  # model requests use an API key
        yield c


GREET = {
    "messages": [
        {"role": "system", "content": "You greet people{% if formal %} formally{% endif %}."},
        {"role": "user", "content": "Say hello to {{ name }}."},
    ],
    "model": "mock",
    "params": {"max_tokens": 50},
    "variables": {"name": {"type": "string"}, "formal": {"type": "boolean", "default": False}},
    "notes": "first",
}


def push(c: TestClient, pid: str = "greet", **changes: Any) -> int:
    r = c.post(f"/admin/prompts/{pid}/versions", json={**GREET, **changes}, headers=AUTH)
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def label(c: TestClient, version: int, name: str = "production", pid: str = "greet") -> None:
    r = c.put(f"/admin/prompts/{pid}/labels/{name}", json={"version": version}, headers=AUTH)
    assert r.status_code == 200, r.text


def ask(c: TestClient, prompt: Any = None, headers: dict[str, str] | None = None, **body: Any) -> Any:
    if prompt is not None:
        body["prompt"] = prompt
    return c.post(CHAT, json=body, headers=headers or {})


def text(r: Any) -> str:
    return str(r.json()["choices"][0]["message"]["content"])


def test_a_stored_prompt_is_rendered_with_its_model_and_version_header(client: TestClient) -> None:
    push(client)
    r = ask(client, {"id": "greet", "variables": {"name": "Ada"}})
    assert r.status_code == 200, r.text
    assert text(r) == "echo: Say hello to Ada."
    assert r.json()["model"] == "mock"
    assert r.headers["x-tollhouse-prompt"] == "greet"
    assert r.headers["x-tollhouse-prompt-version"] == "1"
    assert "prompt;dur=" in r.headers["server-timing"]
    scrape = client.get("/metrics", headers=AUTH).text
    assert 'tollhouse_prompt_requests_total{prompt="greet",status="200",version="1"} 1.0' in scrape
    # The request's own messages follow the template's; its model wins over the version's.
    r = ask(
        client,
        {"id": "greet", "variables": {"name": "Ada"}},
        model="other",
        messages=[{"role": "user", "content": "and Bob"}],
    )
    assert r.status_code == 200 and text(r) == "from other"
    assert r.headers["x-tollhouse-deployment"] == "other"


def test_labels_versions_and_the_short_forms(client: TestClient) -> None:
    push(client)
    push(client, messages=[{"role": "user", "content": "Hi {{ name }}!"}])
    label(client, 1)
    label(client, 2, "staging")
    v = {"name": "Ada"}
    assert ask(client, {"id": "greet", "variables": v}).headers["x-tollhouse-prompt-version"] == "1"
    assert (
        ask(client, {"id": "greet", "label": "staging", "variables": v}).headers["x-tollhouse-prompt-version"]
        == "2"
    )
    r = ask(client, {"id": "greet", "version": 2, "variables": v})
    assert text(r) == "echo: Hi Ada!"
    # For SDKs that drop unknown fields: the metadata entry and the header (short form: no variables).
    r = ask(
        client,
        None,
        model="mock",
        messages=[{"role": "user", "content": "x"}],
        metadata={"tollhouse_prompt": '{"id": "greet", "version": 2, "variables": {"name": "Cy"}}'},
    )
    assert r.status_code == 200 and r.headers["x-tollhouse-prompt-version"] == "2"
    r = ask(
        client,
        None,
        headers={"x-tollhouse-prompt": '{"id": "greet", "label": "staging", "variables": {"name": "Di"}}'},
        model="mock",
        messages=[],
    )
    assert r.status_code == 200 and text(r) == "echo: Hi Di!"


@pytest.mark.parametrize(
    ("prompt", "status", "param"),
    [
        ({"id": "greet"}, 400, "prompt.variables.name"),
        ({"id": "greet", "variables": {"name": 3}}, 400, "prompt.variables.name"),
        ({"id": "greet", "variables": {"name": "a", "age": 3}}, 400, "prompt.variables.age"),
        ({"id": "nope", "variables": {}}, 404, "prompt.id"),
        ({"id": "greet", "version": 9, "variables": {"name": "a"}}, 404, "prompt.version"),
        ({"id": "greet", "label": "gone", "variables": {"name": "a"}}, 404, "prompt.label"),
        ({"id": "greet", "version": 1, "label": "x"}, 400, "prompt.version"),
        ({"id": "../etc"}, 400, "prompt.id"),
        ({"id": "greet", "colour": 1}, 400, "prompt.colour"),
    ],
)
def test_bad_references_are_4xx_naming_the_problem(
    client: TestClient, prompt: Any, status: int, param: str
) -> None:
    push(client)
    r = ask(client, prompt)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_without_a_prompt_model_and_messages_are_still_required(client: TestClient) -> None:
    r = client.post(CHAT, json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    r = client.post(CHAT, json={"model": "mock", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


def test_prompts_off_refuses_a_prompt_reference(tmp_path: Path) -> None:
    settings = mock_settings()
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.post(CHAT, json={"prompt": {"id": "greet"}, "model": "mock"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    assert "prompts.enabled" in r.json()["error"]["message"]


def test_streams_carry_the_version_header(client: TestClient) -> None:
    push(client)
    r = ask(client, {"id": "greet", "variables": {"name": "Ada"}}, stream=True)
    assert r.status_code == 200 and r.headers["x-tollhouse-prompt-version"] == "1"
    assert "Ada" in r.text


def test_admin_api_shows_history_and_diffs_and_refuses_unsafe_templates(client: TestClient) -> None:
    push(client)
    push(client, notes="second", messages=[{"role": "user", "content": "Hi {{ name }}!"}])
    label(client, 1)
    label(client, 2)
    r = client.post("/admin/prompts/greet/labels/production/rollback", headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["previous"] == 2
    shown = client.get("/admin/prompts/greet", headers=AUTH).json()
    assert shown["labels"] == {"production": 1}
    assert [(e["version"], e["actor"]) for e in shown["history"]] == [(1, "api"), (2, "api"), (1, "api")]
    listed = client.get("/admin/prompts", headers=AUTH).json()["data"]
    assert listed == [{"id": "greet", "latest": 2, "labels": {"production": 1}, "experiment": None}]
    diff = client.get("/admin/prompts/greet/diff?from=1&to=2", headers=AUTH).text
    assert "-- role: system" in diff and "+  content: Hi {{ name }}!" in diff
    bad = client.post(
        "/admin/prompts/greet/versions",
        headers=AUTH,
        json={"messages": [{"role": "user", "content": "{{ x.__class__ }}"}]},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages.0.content"
    assert client.get("/admin/prompts", headers={}).status_code == 401


def test_experiment_assignment_is_sticky_per_user(client: TestClient) -> None:
    push(client)
    push(client, messages=[{"role": "user", "content": "Hi {{ name }}!"}])
    label(client, 1)
    r = client.put("/admin/prompts/greet/experiment", json={"arms": {"1": 50, "2": 50}}, headers=AUTH)
    assert r.status_code == 200
    seen: dict[str, set[str]] = {}
    for i in range(20):
        for _ in range(2):
            r = ask(client, {"id": "greet", "variables": {"name": "a"}}, user=f"user-{i}")
            seen.setdefault(f"user-{i}", set()).add(r.headers["x-tollhouse-prompt-version"])
    assert all(len(v) == 1 for v in seen.values())
    assert set().union(*seen.values()) == {"1", "2"}
    # A unit id given in the request wins over the user.
    a = {
        ask(client, {"id": "greet", "variables": {"name": "a"}, "unit": "team-7"}, user=f"u{i}").headers[
            "x-tollhouse-prompt-version"
        ]
        for i in range(5)
    }
    assert len(a) == 1


def _wait(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_shadow_runs_never_change_the_answer_and_stop_at_their_budget(client: TestClient) -> None:
    push(client)
    push(client, model="priced")  # the candidate: $1 per token on the priced mock
    label(client, 1)
    exp = {"arms": {"1": 1}, "shadow": {"version": 2, "sample": 1.0, "budget_usd": 10}}
    assert client.put("/admin/prompts/greet/experiment", json=exp, headers=AUTH).status_code == 200
    answers = [ask(client, {"id": "greet", "variables": {"name": "Ada"}}) for _ in range(6)]
    assert {text(r) for r in answers} == {"echo: Say hello to Ada."}
    assert {r.headers["x-tollhouse-prompt-version"] for r in answers} == {"1"}
    assert all(r.headers["x-tollhouse-deployment"] == "mock" for r in answers)

    def shadow() -> dict[str, Any]:
        return dict(client.get("/admin/prompts/greet/versions/2/metrics", headers=AUTH).json()["shadow"])

    _wait(lambda: shadow()["requests"] >= 1)
    time.sleep(0.3)
    # A shadow run costs 12 tokens = $12 > the $10 budget: once one has been counted, none start.
    assert shadow()["requests"] == 1 and shadow()["cost_usd"] == 12.0
    ring = client.get("/admin/prompts/greet/shadow", headers=AUTH).json()["data"]
    assert ring[0]["shadow_version"] == 2 and ring[0]["answer"] == "echo: Say hello to Ada."
    live = client.get("/admin/prompts/greet/versions/1/metrics", headers=AUTH).json()
    assert live["requests"] == 6 and live["shadow"]["requests"] == 0


def test_a_failing_shadow_is_invisible(client: TestClient) -> None:
    push(client)
    push(client, model="broken")
    label(client, 1)
    exp = {"arms": {"1": 1}, "shadow": {"version": 2, "sample": 1.0, "budget_usd": 10}}
    client.put("/admin/prompts/greet/experiment", json=exp, headers=AUTH)
    r = ask(client, {"id": "greet", "variables": {"name": "Ada"}})
    assert r.status_code == 200 and text(r) == "echo: Say hello to Ada."
    _wait(
        lambda: (
            client.get("/admin/prompts/greet/versions/2/metrics", headers=AUTH).json()["shadow"]["errors"]
            == 1
        )
    )


def test_metrics_ratings_and_automatic_rollback(client: TestClient) -> None:
    push(client, model="sometimes")  # every 10th request fails
    push(client, model="half")  # every 2nd request fails
    label(client, 1)
    for _ in range(30):
        ask(client, {"id": "greet", "variables": {"name": "a"}})
    label(client, 2)
    ids = []
    for _ in range(19):
        r = ask(client, {"id": "greet", "variables": {"name": "a"}})
        assert r.headers["x-tollhouse-prompt-version"] == "2"
        ids.append(r.headers["x-request-id"])
    time.sleep(0.3)
    m = client.get("/admin/prompts/greet/versions/2/metrics", headers=AUTH).json()
    # 47 % errors against 10 %, but fewer than min_requests (20): no rollback yet.
    assert m["requests"] == 19 and m["errors"] == 9 and m["labels"] == ["production"]
    assert m["compared_with"]["version"] == 1 and m["compared_with"]["error_rate_diff"] is not None
    assert client.post("/v1/feedback", json={"request_id": ids[0], "score": 4}).status_code == 202
    ask(client, {"id": "greet", "variables": {"name": "a"}})  # the 20th
    _wait(lambda: client.get("/admin/prompts/greet", headers=AUTH).json()["labels"]["production"] == 1)
    shown = client.get("/admin/prompts/greet", headers=AUTH).json()
    last = shown["history"][-1]
    assert last["actor"] == "rollback" and last["version"] == 1 and last["previous"] == 2
    assert "over 20 requests" in last["reason"]
    m = client.get("/admin/prompts/greet/versions/2/metrics", headers=AUTH).json()
    assert m["requests"] == 20 and m["error_rate"] == 0.5 and m["ratings"] == 1 and m["rating_mean"] == 4.0
    assert (
        ask(client, {"id": "greet", "variables": {"name": "a"}}).headers["x-tollhouse-prompt-version"] == "1"
    )


def test_yaml_files_edited_by_hand_are_hot_reloaded(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "prompts" / "faq.yaml"
    path.write_text(
        "labels: {production: 1}\n"
        "versions:\n"
        "  - model: mock\n"
        "    messages: [{role: user, content: 'FAQ about {{ topic }}'}]\n"
    )
    _wait(lambda: ask(client, {"id": "faq", "variables": {"topic": "billing"}}).status_code == 200)
    assert text(ask(client, {"id": "faq", "variables": {"topic": "billing"}})) == "echo: FAQ about billing"
    path.write_text(
        path.read_text() + "  - model: mock\n    messages: [{role: user, content: 'v2 {{ topic }}'}]\n"
    )
    path.write_text(path.read_text().replace("production: 1", "production: 2"))
    _wait(lambda: text(ask(client, {"id": "faq", "variables": {"topic": "x"}})) == "echo: v2 x")
