"""Dashboard pages over HTTP (no browser): sign-in, the cookie over TLS, headers, CSRF, bad input, every
page rendering with real data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import mock_settings

from tollhouse.app import create_app

ADMIN = "th-unit-admin-key-0123456789"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TH_UI_ADMIN", ADMIN)
    settings = mock_settings()
    settings.auth.admin_key_env = "TH_UI_ADMIN"
    settings.ledger.enabled = True
    settings.ledger.sqlite_path = str(tmp_path / "ledger.db")
    settings.ledger.journal_dir = str(tmp_path / "journal")
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        yield c


def csrf(c: TestClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    assert found is not None
    return found.group(1)


def sign_in(c: TestClient) -> None:
    r = c.post("/ui/login", data={"csrf": csrf(c, "/ui/login"), "secret": ADMIN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"


def test_session_cookie_is_secure_over_tls(client: TestClient) -> None:
    r = client.post(
        "/ui/login", data={"csrf": csrf(client, "/ui/login"), "secret": ADMIN}, follow_redirects=False
    )
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("th_session="))
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/ui"} <= flags


def test_headers_and_sign_in_required(client: TestClient) -> None:
    r = client.get("/ui/keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    login = client.get("/ui/login")
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY"
    assert client.get("/ui/events", follow_redirects=False).status_code == 303
    assert client.get("/ui/static/vendor/htmx-2.0.4.LICENSE").status_code == 200


def test_wrong_key_and_expired_form(client: TestClient) -> None:
    r = client.post("/ui/login", data={"csrf": csrf(client, "/ui/login"), "secret": "nope"})
    assert r.status_code == 401 and "Wrong admin key" in r.text
    r = client.post("/ui/login", data={"csrf": "forged", "secret": ADMIN})
    assert r.status_code == 403 and "expired" in r.text


def test_every_page_renders_and_changes_need_the_token(client: TestClient) -> None:
    sign_in(client)
    client.post("/v1/chat/completions", headers={"authorization": f"Bearer {ADMIN}"},
                json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    for path in ["/ui/", "/ui/?window=day", "/ui/?window=month", "/ui/requests", "/ui/keys", "/ui/models",
                 "/ui/cache", "/ui/prompts", "/ui/audit"]:  # fmt: skip
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert ADMIN not in r.text
    assert client.get("/ui/?window=year").status_code == 400
    assert client.get("/ui/requests?status=maybe").status_code == 400
    assert client.get("/ui/requests/no-such-request").status_code == 404
    assert client.get("/ui/keys/key_missing").status_code == 404

    assert client.post("/ui/keys", data={"name": "x"}).status_code == 403
    token = csrf(client, "/ui/keys")
    bad = client.post("/ui/keys", data={"csrf": token, "daily_usd": "-5"})
    assert bad.status_code == 400 and "daily_usd" in bad.text
    made = client.post("/ui/keys", data={"csrf": token, "name": "unit", "models": "mock"})
    assert made.status_code == 201
    secret = re.search(r'value="(th-[^"]+)"', made.text)
    assert secret is not None
    assert client.get("/ui/keys").text.count(secret.group(1)) == 0  # shown once, never listed
    r = client.post("/ui/cache/invalidate", data={"csrf": token})
    assert r.status_code == 400 and "name key_id, user, team and/or model" in r.text
    r = client.post("/ui/users", data={"csrf": token, "name": "bob", "password": "short"})
    assert r.status_code == 400 and "12 characters" in r.text
    audit = client.get("/ui/audit").text
    assert "key.create" in audit and "session.sign_in" in audit


def test_open_mode_enters_without_a_key_only_when_open(client: TestClient, tmp_path: Path) -> None:
    # An admin key is configured: "open" is refused like a wrong key.
    r = client.post(
        "/ui/login", data={"csrf": csrf(client, "/ui/login"), "open": "1"}, follow_redirects=False
    )
    assert r.status_code == 401
    settings = mock_settings()  # no admin key, no API key: open mode (loopback only)
    settings.ledger.enabled = True
    settings.ledger.sqlite_path = str(tmp_path / "open" / "ledger.db")
    settings.ledger.journal_dir = str(tmp_path / "open" / "journal")
    with TestClient(create_app(settings)) as c:
        assert "Enter without a key" in c.get("/ui/login").text
        r = c.post("/ui/login", data={"csrf": csrf(c, "/ui/login"), "open": "1"}, follow_redirects=False)
        assert r.status_code == 303
        assert "Add user" in c.get("/ui/audit").text  # the local operator is the admin


def test_a_store_that_cannot_open_is_a_503_naming_why() -> None:
    settings = mock_settings()
    settings.ledger.backend = "postgres"  # the ledger is off; the dashboard store would live in its database
    settings.ledger.postgres_dsn_env = "TH_UI_NO_SUCH_DSN"
    with TestClient(create_app(settings)) as c:
        r = c.get("/ui/login")
        assert r.status_code == 503
        assert "TH_UI_NO_SUCH_DSN" in r.text


def test_admin_api_changes_are_in_the_audit_log(client: TestClient) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    made = client.post("/admin/keys", json={"name": "from-api", "daily_usd": 3}, headers=admin)
    assert made.status_code == 201
    key_id, secret = made.json()["id"], made.json()["key"]
    assert client.patch(f"/admin/keys/{key_id}", json={"rpm": 10}, headers=admin).status_code == 200
    assert client.post(f"/admin/keys/{key_id}/rotate", headers=admin).status_code == 200
    assert client.post(f"/admin/keys/{key_id}/revoke", headers=admin).status_code == 200
    assert client.post("/admin/cache/invalidate", json={"model": "mock"}, headers=admin).status_code == 200
    sign_in(client)
    page = client.get("/ui/audit").text
    for action in ["key.create", "key.update", "key.rotate", "key.revoke", "cache.invalidate"]:
        assert action in page, action
    assert "admin API" in page and key_id in page and "daily_usd" in page
    assert secret not in page  # ids and limits only, never a secret


def test_emptying_a_field_on_the_edit_form_removes_that_limit(client: TestClient) -> None:
    sign_in(client)
    token = csrf(client, "/ui/keys")
    first = {"name": "edit-me", "team": "t1", "models": "mock", "rpm": "60", "daily_usd": "5"}
    made = client.post("/ui/keys", data={"csrf": token, **first})
    assert made.status_code == 201
    found = re.search(r"/ui/keys/(key_[0-9a-f]+)", made.text)
    assert found is not None
    key_id = found.group(1)
    page = client.get(f"/ui/keys/{key_id}").text
    assert 'name="rpm" inputmode="numeric" value="60"' in page  # the form shows the current values
    emptied = {"team": "", "models": "", "rpm": "", "tpm": "900", "daily_usd": "5"}
    saved = client.post(f"/ui/keys/{key_id}", data={"csrf": token, "name": "edit-me", **emptied})
    assert saved.status_code == 200 and "Saved." in saved.text
    key = client.get(f"/admin/keys/{key_id}", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert key["rpm"] is None and key["team"] is None and key["models"] is None  # emptied: removed
    assert key["tpm"] == 900 and key["daily_usd"] == 5 and key["name"] == "edit-me"
    # A field the form did not send at all is left alone.
    client.post(f"/ui/keys/{key_id}", data={"csrf": token, "tpm": "1000"})
    key = client.get(f"/admin/keys/{key_id}", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert key["tpm"] == 1000 and key["daily_usd"] == 5 and key["name"] == "edit-me"
    audit = client.get("/ui/audit").text
    assert "key.update" in audit


def test_live_tail_lists_model_requests_as_they_end(client: TestClient) -> None:
    body = {"model": "mock", "messages": [{"role": "user", "content": "hello"}]}
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert client.post(
        "/v1/chat/completions", json=body, headers={**auth, "x-request-id": "tail-ok-1"}
    ).is_success
    refused = client.post("/v1/chat/completions", json=body, headers={"x-request-id": "tail-refused-1"})
    assert refused.status_code == 401
    client.get("/health/live", headers={"x-request-id": "tail-health-1"})  # not a model request
    sign_in(client)
    page = client.get("/ui/").text
    assert "tail-ok-1" in page and "tail-refused-1" in page
    assert "tail-health-1" not in page
