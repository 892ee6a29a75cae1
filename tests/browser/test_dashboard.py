"""The dashboard in real headless Chromium against a real gateway process: sign-in, live traffic, keys
used from the OpenAI SDK, budgets, CSRF, the security headers and cookie, the audit log, a phone."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.gateway_server import GatewayProcess, gateway_server

pytestmark = pytest.mark.slow
ADMIN = "th-browser-admin-key-0123456789abcdef"
PAGES = ["/ui/", "/ui/requests", "/ui/keys", "/ui/models", "/ui/cache", "/ui/prompts", "/ui/audit"]


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProcess]:
    config = {
        "auth": {"admin_key_env": "TH_BROWSER_ADMIN"},
        "embedded": {"chat": False, "embeddings": False},
        "models": [
            {
                "name": "priced",
                "provider": "mock",
                "max_output_tokens": 256,
                "pricing": {"input_per_1m": 1000.0, "output_per_1m": 1000.0},
            }
        ],
        "keys": {"sqlite_path": "keys.db"},
        "ledger": {"sqlite_path": "ledger.db", "journal_dir": "journal", "flush_interval_s": 0.1},
        "prompts": {"enabled": True, "backend": "sqlite", "sqlite_path": "prompts.db"},
        "logging": {"format": "text"},
    }
    with gateway_server(config, env={"TH_BROWSER_ADMIN": ADMIN}) as gw:
        yield gw


@pytest.fixture
def page(browser: Any, gateway: GatewayProcess) -> Iterator[Any]:
    """A signed-in page (admin key) whose console errors fail the test (a CSP violation logs one)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=gateway.root)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if script_error(m) else None)
    sign_in(pg, "", ADMIN)
    yield pg
    ctx.close()
    assert errors == []


def script_error(message: Any) -> bool:
    """A console error other than an HTTP error answer (which some tests provoke): a script error or a
    Content-Security-Policy violation."""
    return bool(message.type == "error" and not message.text.startswith("Failed to load resource"))


def sign_in(pg: Any, user: str, secret: str) -> None:
    pg.goto("/ui/login")
    pg.get_by_label("User name").fill(user)
    pg.get_by_label("Admin key or password").fill(secret)
    pg.get_by_role("button", name="Sign in").click()


def sdk(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def chat(gateway: GatewayProcess, key: str) -> Any:
    return sdk(gateway, key).chat.completions.with_raw_response.create(
        model="priced", messages=[{"role": "user", "content": "hello"}], max_tokens=16
    )


def create_key(page: Any, **fields: str) -> tuple[str, str]:
    """Create a key from the Keys page; returns (key id, secret)."""
    page.goto("/ui/keys")
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#secret").input_value()
    href = page.get_by_role("link", name="Go to the key").get_attribute("href")
    return href.rsplit("/", 1)[-1], secret


def test_sign_in_cookie_headers_and_sign_out(browser: Any, gateway: GatewayProcess) -> None:
    ctx = browser.new_context(base_url=gateway.root)
    pg = ctx.new_page()
    response = pg.goto("/ui/")
    assert pg.url.endswith("/ui/login")  # not signed in: sent to sign in
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp

    sign_in(pg, "", "not-the-admin-key")
    assert pg.get_by_role("alert").inner_text() == "Wrong admin key, or wrong user name or password."
    sign_in(pg, "", ADMIN)
    assert pg.url.endswith("/ui/")
    assert pg.get_by_role("heading", name="Overview").is_visible()
    cookie = next(c for c in ctx.cookies() if c["name"] == "th_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP on loopback; over TLS the cookie is Secure
    assert ADMIN not in pg.content()  # the admin key never appears in a page

    pg.get_by_role("button", name="Sign out").click()
    assert pg.url.endswith("/ui/login")
    ctx.add_cookies([{**cookie}])  # the old session cookie is dead server-side
    pg.goto("/ui/keys")
    assert pg.url.endswith("/ui/login")
    ctx.close()


def test_traffic_appears_live(page: Any, gateway: GatewayProcess) -> None:
    page.goto("/ui/")
    before = page.locator('[data-stat="requests"]').inner_text()
    rid = chat(gateway, ADMIN).headers["x-request-id"]
    page.wait_for_selector(f'#tail tr[data-request-id="{rid}"]', timeout=10_000)  # pushed, no reload
    page.wait_for_function(
        "before => document.querySelector('[data-stat=\"requests\"]').textContent !== before",
        arg=before,
        timeout=15_000,
    )  # the ledger's figures, refreshed every few seconds
    page.locator(f'#tail tr[data-request-id="{rid}"] a').click()
    assert page.get_by_role("heading", name=re.compile("Span timeline")).is_visible()
    assert page.locator("svg.timeline rect").count() >= 2

    page.goto("/ui/requests")
    page.get_by_label("Request id, key id, user, team or model").fill(rid)  # htmx: searched as you type
    page.wait_for_function(
        "rid => [...document.querySelectorAll('#rows tbody tr')].length === 1"
        " && document.querySelector('#rows tbody a').href.endsWith(rid)",
        arg=rid,
        timeout=10_000,
    )
    page.wait_for_url(f"**/ui/requests?q={rid}*", timeout=5_000)  # the search is in the address bar


def test_key_create_rotate_revoke_from_the_sdk(page: Any, gateway: GatewayProcess) -> None:
    key_id, secret = create_key(page, Name="browser-key", User="ann", Team="qa")
    assert secret.startswith("th-")
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("() => document.querySelector('[data-copied]').textContent === 'Copied.'")
    assert chat(gateway, secret).http_response.status_code == 200

    page.goto(f"/ui/keys/{key_id}")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Rotate secret").click()
    rotated = page.locator("#secret").input_value()
    assert rotated != secret
    with pytest.raises(openai.AuthenticationError):
        chat(gateway, secret)
    assert chat(gateway, rotated).http_response.status_code == 200

    page.goto(f"/ui/keys/{key_id}")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke key").click()
    assert page.get_by_text("revoked").first.is_visible()
    with pytest.raises(openai.AuthenticationError):
        chat(gateway, rotated)

    page.goto("/ui/audit")
    rows = page.locator("#audit tbody tr").all_inner_texts()
    for action in ("key.create", "key.rotate", "key.revoke"):
        assert any(action in r and key_id in r and "admin" in r for r in rows), (action, rows)
    assert not any(secret in r or rotated in r for r in rows)  # secrets never reach the audit log


def test_budget_change_refuses_the_next_request(page: Any, gateway: GatewayProcess) -> None:
    key_id, secret = create_key(page, Name="budgeted")
    assert chat(gateway, secret).http_response.status_code == 200
    page.goto(f"/ui/keys/{key_id}")
    page.get_by_label("Daily budget (USD)").fill("0.000001")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Saved."
    with pytest.raises(openai.RateLimitError) as refused:
        chat(gateway, secret)
    assert "budget" in str(refused.value).lower()
    page.goto("/ui/audit")
    assert (
        page.locator("#audit tbody tr", has_text="key.update").filter(has_text="daily_usd=1e-06").count() == 1
    )


def test_bad_input_is_named(page: Any) -> None:
    page.goto("/ui/keys")
    page.get_by_label("Requests / minute").fill("many")
    page.get_by_role("button", name="Create key").click()
    assert "rpm: 'many' is not a number." in page.get_by_role("alert").inner_text()


def test_changes_without_the_csrf_token_are_refused(page: Any, gateway: GatewayProcess) -> None:
    before = len(page.request.get("/admin/keys", headers={"authorization": f"Bearer {ADMIN}"}).json()["data"])
    # The session cookie rides along (same browser context) but the token is missing or wrong.
    for form in ({"name": "forged"}, {"name": "forged", "csrf": "guess"}):
        r = page.request.post("/ui/keys", form=form)
        assert r.status == 403
        assert "CSRF" in r.text()
    r = page.request.post("/ui/keys", form={"name": "forged"}, headers={"origin": "https://evil.example"})
    assert r.status == 403
    after = len(page.request.get("/admin/keys", headers={"authorization": f"Bearer {ADMIN}"}).json()["data"])
    assert after == before


def test_dashboard_user_signs_in_and_is_audited(page: Any, browser: Any, gateway: GatewayProcess) -> None:
    page.goto("/ui/audit")
    page.get_by_label("User name").fill("operator1")
    page.get_by_label("Password (12+ characters)").fill("correct horse battery")
    page.get_by_role("button", name="Add user").click()
    ctx = browser.new_context(base_url=gateway.root)
    pg = ctx.new_page()
    sign_in(pg, "operator1", "wrong password!!")
    assert pg.get_by_role("alert").is_visible()
    sign_in(pg, "operator1", "correct horse battery")
    assert pg.url.endswith("/ui/")
    pg.goto("/ui/audit")
    rows = pg.locator("#audit tbody tr").all_inner_texts()
    assert any("user.create" in r and "operator1" in r for r in rows)
    assert any("session.sign_in" in r and "user:operator1" in r for r in rows)
    assert pg.get_by_role("button", name="Add user").count() == 0  # only the admin manages users
    ctx.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("device", "width"), [("desktop", 1280), ("phone", 390)])
def test_every_page_fits_and_is_screenshotted(
    browser: Any, gateway: GatewayProcess, artifacts: Path, scheme: str, device: str, width: int
) -> None:
    ctx = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, base_url=gateway.root
    )
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if script_error(m) else None)
    sign_in(pg, "", ADMIN)
    chat(gateway, ADMIN)
    time.sleep(0.3)  # the ledger's flush interval
    for path in PAGES:
        response = pg.goto(path)
        assert response.status == 200, path
        pg.wait_for_load_state("load")
        overflow = pg.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
        nav = pg.get_by_role("navigation", name="Dashboard")
        assert nav.is_visible()
        slug = path.removeprefix("/ui/").replace("/", "-") or "overview"
        pg.screenshot(path=str(artifacts / f"{slug}-{device}-{scheme}.png"), full_page=True)
    ctx.close()
    assert errors == []
