"""Dashboard passwords, sign-in checks and the failed sign-in brake."""

from __future__ import annotations

from pathlib import Path

from tollhouse.stores.dashboard import SqliteUiStore, User
from tollhouse.ui.auth import MAX_FAILURES, Sessions, Throttle, check_password, hash_password


def test_passwords_are_salted_scrypt() -> None:
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b and a.startswith("scrypt$")
    assert check_password("correct horse battery", a)
    assert not check_password("correct horse batterY", a)
    assert not check_password("anything", "not-a-hash")


def test_throttle_blocks_after_repeated_failures() -> None:
    t = Throttle()
    for _ in range(MAX_FAILURES - 1):
        t.failed("1.2.3.4", 1000.0)
    assert not t.blocked("1.2.3.4", 1000.0)
    t.failed("1.2.3.4", 1000.0)
    assert t.blocked("1.2.3.4", 1001.0)
    assert not t.blocked("5.6.7.8", 1001.0)
    assert not t.blocked("1.2.3.4", 1000.0 + 301)  # the window has passed
    t.failed("9.9.9.9", 0.0)
    t.cleared("9.9.9.9")
    assert not t.blocked("9.9.9.9", 0.0)


async def test_verify_admin_key_and_users(tmp_path: Path) -> None:
    store = SqliteUiStore(str(tmp_path / "ui.db"))
    await store.open()
    s = Sessions(store)
    assert await s.verify("admin-key", "", "admin-key") == "admin"
    assert await s.verify("admin-key", "", "wrong") is None
    assert await s.verify(None, "", "") is None  # no admin key configured: nobody signs in with one
    await store.add_user(User("ann", hash_password("a long password"), 0.0))
    assert await s.verify("admin-key", "ann", "a long password") == "user:ann"
    assert await s.verify("admin-key", "ann", "admin-key") is None
    assert await s.verify("admin-key", "bob", "a long password") is None
    await store.aclose()
