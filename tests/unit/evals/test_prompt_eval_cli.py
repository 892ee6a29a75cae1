"""``tollhouse eval prompt``: the table, and the exit code that gates a release (0 pass, 1 regression, 2 bad
input), run in process against mock models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tollhouse.cli import main

SYSTEM = {"role": "system", "content": "You answer questions about {{ product }}."}
USER = {"role": "user", "content": "{{ question }}"}


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    config = {
        "embedded": {"chat": False, "embeddings": False},
        "models": [
            {"name": "good", "provider": "mock", "reply": '{"answer": "Open Settings, then Refund."}'},
            {"name": "bad", "provider": "mock", "reply": "I cannot help with that."},
            {"name": "judge-a", "provider": "mock", "reply": "A"},
            {"name": "embed", "provider": "mock"},
        ],
        "ledger": {"enabled": False, "sqlite_path": str(tmp_path / "ledger.db")},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "prompts": {"enabled": True, "folder": str(tmp_path / "prompts")},
    }
    (tmp_path / "tollhouse.yaml").write_text(yaml.safe_dump(config))
    for n, model in enumerate(["good", "good", "bad"], start=1):
        (tmp_path / f"v{n}.yaml").write_text(yaml.safe_dump({"model": model, "messages": [SYSTEM, USER]}))
        assert (
            main(
                [
                    "prompts",
                    "push",
                    "support",
                    "--file",
                    str(tmp_path / f"v{n}.yaml"),
                    "--config",
                    str(tmp_path / "tollhouse.yaml"),
                ]
            )
            == 0
        )
    rows = [
        {"id": "refund", "variables": {"product": "T", "question": "refund?"}, "expected": "refund"},
        {
            "id": "json",
            "variables": {"product": "T", "question": "json?"},
            "checks": [{"type": "json_schema", "schema": {"type": "object", "required": ["answer"]}}],
        },
        {
            "id": "exact",
            "variables": {"product": "T", "question": "x"},
            "checks": [{"type": "regex", "pattern": "Settings"}],
        },
    ]
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "checks.yaml").write_text(
        yaml.safe_dump([{"type": "contains"}, {"type": "latency", "max_s": 5}])
    )
    return tmp_path


def _eval(d: Path, *extra: str) -> int:
    return main(
        [
            "eval",
            "prompt",
            "support",
            "--config",
            str(d / "tollhouse.yaml"),
            "--dataset",
            str(d / "cases.jsonl"),
            "--checks",
            str(d / "checks.yaml"),
            *extra,
        ]
    )


def test_an_equal_version_passes_the_gate(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(setup, "--version", "2", "--against", "1", "--out", str(setup / "out.json")) == 0
    out = capsys.readouterr().out
    assert "prompt support: v2 against v1 on 3 cases" in out
    assert "json_schema    1/1 (100%)  1/1 (100%)" in out and "gate: pass" in out
    saved = json.loads((setup / "out.json").read_text())
    assert saved["gate"] == "pass" and saved["versions"]["2"]["checks"]["contains"] == {"passed": 1, "of": 1}
    # The result is kept with the prompt, visible per version.
    assert _eval(setup, "--version", "3", "--against", "1") == 1
    capsys.readouterr()
    assert main(["prompts", "show", "support", "--json", "--config", str(setup / "tollhouse.yaml")]) == 0
    kept = json.loads(capsys.readouterr().out)["evaluations"]
    assert [(e["gate"], sorted(e["versions"])) for e in kept] == [("pass", ["1", "2"]), ("fail", ["1", "3"])]
    assert kept[0]["dataset"] == "cases.jsonl" and kept[1]["failures"]


def test_a_regression_fails_the_gate_with_exit_1(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(setup, "--version", "3", "--against", "1") == 1
    out = capsys.readouterr().out
    assert "gate: FAIL" in out
    assert "contains: v3 passes 0.0% < v1's 100.0%" in out
    assert "json_schema: v3 passes 0.0% < v1's 100.0%" in out


def test_allowed_regression_and_min_pass_rate(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(setup, "--version", "3", "--against", "1", "--max-regression", "1.0") == 0
    assert _eval(setup, "--version", "3", "--min-pass-rate", "0.5") == 1
    assert _eval(setup, "--version", "1", "--min-pass-rate", "1.0") == 0
    capsys.readouterr()


def test_a_position_biased_judge_ties_and_does_not_gate(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _eval(setup, "--version", "2", "--against", "1", "--judge", "judge-a") == 0
    out = capsys.readouterr().out
    assert "judge judge-a (pairwise, both orders): v2 better 0, v1 better 0, tie or inconsistent 3" in out


def test_pointwise_scores_and_similarity(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {
            "variables": {"product": "T", "question": "q"},
            "expected": '{"answer": "Open Settings, then Refund."}',
            "checks": [{"type": "similarity", "min": 0.99}, {"type": "exact"}],
        }
    ]
    (setup / "sim.jsonl").write_text(json.dumps(rows[0]) + "\n")
    code = main(
        [
            "eval",
            "prompt",
            "support",
            "--version",
            "1",
            "--against",
            "3",
            "--dataset",
            str(setup / "sim.jsonl"),
            "--config",
            str(setup / "tollhouse.yaml"),
            "--embed-model",
            "embed",
            "--judge",
            "judge-a",
            "--judge-mode",
            "pointwise",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "similarity     1/1 (100%)  0/1 (0%)" in out and "exact          1/1 (100%)  0/1 (0%)" in out


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("not json", "line 1: not JSON"),
        ('{"variables": 3}', "line 1: variables must be an object"),
        ('{"checks": [{"type": "vibes"}]}', "line 1 checks.0"),
        ('{"checks": [{"type": "regex"}]}', "needs 'pattern'"),
    ],
)
def test_bad_datasets_exit_2_naming_the_line(
    setup: Path, capsys: pytest.CaptureFixture[str], line: str, words: str
) -> None:
    (setup / "cases.jsonl").write_text(line + "\n")
    assert _eval(setup, "--version", "1") == 2
    assert words in capsys.readouterr().out


def test_unknown_prompt_or_version_exit_2(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(setup, "--version", "9") == 2
    assert "no version 9" in capsys.readouterr().out
    assert (
        main(
            [
                "eval",
                "prompt",
                "nope",
                "--version",
                "1",
                "--dataset",
                str(setup / "cases.jsonl"),
                "--config",
                str(setup / "tollhouse.yaml"),
            ]
        )
        == 2
    )
    assert "Unknown prompt 'nope'" in capsys.readouterr().out


def test_prompt_changes_from_the_cli_are_audited(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from tollhouse.stores.dashboard import SqliteUiStore

    cfg = str(setup / "tollhouse.yaml")
    assert main(["prompts", "label", "support", "production", "1", "--config", cfg, "--reason", "go"]) == 0
    assert main(["prompts", "label", "support", "production", "2", "--config", cfg]) == 0
    assert main(["prompts", "rollback", "support", "production", "--config", cfg]) == 0
    capsys.readouterr()

    async def read() -> list[tuple[str, dict[str, object]]]:
        store = SqliteUiStore(str(setup / "tollhouse-ui.db"))
        await store.open()
        try:
            return [(e.action, e.detail) for e in reversed(await store.audit_log(20))]
        finally:
            await store.aclose()

    entries = asyncio.run(read())
    assert [a for a, _ in entries] == ["prompt.push"] * 3 + ["prompt.promote"] * 2 + ["prompt.roll_back"]
    assert [d["version"] for _, d in entries[:3]] == [1, 2, 3]
    assert entries[3][1]["to"] == 1 and entries[3][1]["reason"] == "go"
    assert entries[5][1]["to"] == 1 and entries[5][1]["previous"] == 2
