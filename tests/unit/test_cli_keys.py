"""``tollhouse keys …`` and ``tollhouse usage / costs`` against the configured stores (no server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from tests.support.mock_upstream import free_port

from tollhouse.cli import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "tollhouse.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "embedded": {"chat": False, "embeddings": False},
                "models": [
                    {"name": "a", "provider": "mock", "aliases": ["a-alias"]},
                    {"name": "b", "provider": "mock"},
                ],
                "routing": {"groups": [{"name": "g", "deployments": [{"model": "a"}, {"model": "b"}]}]},
                "keys": {"sqlite_path": str(tmp_path / "keys.db")},
                "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "journal_dir": str(tmp_path / "j")},
            }
        )
    )
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_key_commands(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    created = run(
        capsys, "keys", "create", "--config", config, "--name", "ci", "--rpm", "60", "--models", "a,b"
    )
    assert isinstance(created, dict) and created["key"].startswith("th-")
    assert created["rpm"] == 60 and created["models"] == ["a", "b"]
    listed = run(capsys, "keys", "list", "--config", config)
    assert (
        isinstance(listed, list) and [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    )
    updated = run(capsys, "keys", "update", created["id"], "--config", config, "--tpm", "1000")
    assert isinstance(updated, dict) and updated["tpm"] == 1000 and updated["rpm"] == 60
    rotated = run(capsys, "keys", "rotate", created["id"], "--config", config)
    assert isinstance(rotated, dict) and rotated["key"] != created["key"]
    revoked = run(capsys, "keys", "revoke", created["id"], "--config", config)
    assert isinstance(revoked, dict) and revoked["revoked_at"] is not None
    assert main(["keys", "get", "key_missing", "--config", config]) == 1
    assert "No API key with id 'key_missing'" in capsys.readouterr().err


def test_report_commands(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    usage = run(capsys, "usage", "--config", config, "--group-by", "model")
    assert isinstance(usage, dict) and usage["data"] == [] and usage["totals"]["requests"] == 0
    costs = run(capsys, "costs", "--config", config)
    assert isinstance(costs, dict) and costs["total_requests"] == 0


def test_secure_default_counts_created_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tollhouse.access.keys import has_keys
    from tollhouse.config.access import KeysSettings

    cfg = KeysSettings(sqlite_path=str(tmp_path / "k.db"))
    assert not has_keys(cfg)
    assert not (tmp_path / "k.db").exists()  # asking does not create the database
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"keys": {"sqlite_path": str(tmp_path / "k.db")}}))
    run(capsys, "keys", "create", "--config", str(config))
    assert has_keys(cfg)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--daily-usd", "1e308"], "--daily-usd"),
        (["--daily-usd", "inf"], "--daily-usd"),
        (["--monthly-usd", "nan"], "--monthly-usd"),
        (["--daily-usd", "0"], "--daily-usd"),
        (["--rpm", "1000000000000"], "--rpm"),
        (["--expires-days", "inf"], "--expires-days"),
        (["--expires-days", "-1"], "--expires-days"),
    ],
)
def test_key_flags_out_of_bounds_are_refused_naming_the_flag(
    config: str, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    assert main(["keys", "create", "--config", config, *flags]) == 1
    assert named in capsys.readouterr().err
    assert run(capsys, "keys", "list", "--config", config) == []  # nothing was written


def test_budget_flags(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    created = run(capsys, "keys", "create", "--config", config, "--daily-usd", "2.5", "--monthly-usd", "40")
    assert isinstance(created, dict) and (created["daily_usd"], created["monthly_usd"]) == (2.5, 40.0)
    assert main(["keys", "update", created["id"], "--config", config, "--daily-usd", "1e10"]) == 1
    assert "--daily-usd" in capsys.readouterr().err
    updated = run(capsys, "keys", "update", created["id"], "--config", config, "--daily-usd", "3")
    assert isinstance(updated, dict) and updated["daily_usd"] == 3.0 and updated["monthly_usd"] == 40.0


def test_models_must_be_configured(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--config", config, "--models", "a,gpt-9"]) == 1
    err = capsys.readouterr().err
    assert "--models: 'gpt-9' not configured" in err and "a, a-alias, b, g" in err
    assert run(capsys, "keys", "list", "--config", config) == []  # nothing was written
    created = run(capsys, "keys", "create", "--config", config, "--models", "a-alias,g")
    assert isinstance(created, dict) and created["models"] == ["a-alias", "g"]  # aliases and groups count
    assert main(["keys", "update", created["id"], "--config", config, "--models", "nope"]) == 1


def test_tables_by_default(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = text(
        capsys, "keys", "create", "--config", config, "--name", "web", "--models", "a", "--daily-usd", "5"
    )
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())
    assert fields["name"] == "web" and fields["status"] == "active" and fields["models"] == "a"
    assert fields["daily budget (USD)"] == "5" and fields["monthly budget (USD)"] == "-"
    assert fields["key"].startswith("th-")
    assert fields["created"].endswith(" UTC")  # a date, not epoch seconds
    listed = text(capsys, "keys", "list", "--config", config)
    header, rule, row = listed.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "PREFIX", "STATUS"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split()[1] == "web" and row.split()[3] == "active" and row.endswith("-")  # never used
    assert text(capsys, "usage", "--config", config).splitlines()[-1].split()[:2] == ["TOTAL", "0"]
    assert text(capsys, "costs", "--config", config).splitlines()[2].split()[:2] == ["TOTAL", "USD"]


@pytest.mark.parametrize(
    ("argv", "store"),
    [(["costs"], "usage ledger"), (["usage"], "usage ledger"), (["keys", "list"], "key store")],
)
def test_a_database_that_is_down_is_one_clear_line_and_a_failing_exit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    store: str,
) -> None:
    monkeypatch.setenv("TH_DOWN_DSN", f"postgresql://postgres@127.0.0.1:{free_port()}/test")  # nobody listens
    path = tmp_path / "tollhouse.yaml"
    down = {"backend": "postgres", "postgres_dsn_env": "TH_DOWN_DSN"}
    path.write_text(
        yaml.safe_dump(
            {
                "embedded": {"chat": False, "embeddings": False},
                "keys": down,
                "ledger": {**down, "journal_dir": str(tmp_path / "j")},
            }
        )
    )
    assert main([*argv, "--config", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert (
        lines[0].startswith(f"tollhouse: The {store} (PostgreSQL) is unavailable")
        and "ConnectionRefusedError" in lines[0]
    )


def test_cli_changes_are_in_the_audit_log(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from tollhouse.cli_audit import who
    from tollhouse.stores.dashboard import SqliteUiStore

    created = run(capsys, "keys", "create", "--config", config, "--name", "ops", "--rpm", "5")
    assert isinstance(created, dict)
    run(capsys, "keys", "update", created["id"], "--config", config, "--tpm", "900")
    run(capsys, "keys", "rotate", created["id"], "--config", config)
    run(capsys, "keys", "revoke", created["id"], "--config", config)
    run(capsys, "keys", "list", "--config", config)  # a read: not audited

    async def read() -> list[tuple[str, str, str, dict[str, object]]]:
        store = SqliteUiStore(str(tmp_path / "tollhouse-ui.db"))  # beside the ledger's file
        await store.open()
        try:
            return [(e.who, e.action, e.target, e.detail) for e in await store.audit_log(10)]
        finally:
            await store.aclose()

    entries = list(reversed(asyncio.run(read())))  # the log is newest first
    assert [a for _, a, _, _ in entries] == ["key.create", "key.update", "key.rotate", "key.revoke"]
    assert {w for w, _, _, _ in entries} == {who()} and who().startswith("cli ")
    assert {t for _, _, t, _ in entries} == {created["id"]}
    assert entries[0][3]["rpm"] == 5 and entries[1][3] == {"tpm": 900}


def test_an_unreachable_audit_store_warns_but_the_change_stands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the ledger's folder should be")
    path = tmp_path / "tollhouse.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "embedded": {"chat": False, "embeddings": False},
                "models": [{"name": "a", "provider": "mock"}],
                "keys": {"sqlite_path": str(tmp_path / "keys.db")},
                "ledger": {"sqlite_path": str(blocked / "ledger.db"), "journal_dir": str(tmp_path / "j")},
            }
        )
    )
    assert main(["keys", "create", "--config", str(path), "--name", "x", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["key"].startswith("th-")
    assert "not written to the audit log" in out.err
    listed = run(capsys, "keys", "list", "--config", str(path))
    assert isinstance(listed, list) and len(listed) == 1
