"""``tollhouse eval guardrails`` on a small slice of the shared dev sets (the full run is in docs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import SHARED

from tollhouse.cli import main
from tollhouse.evals.report import bootstrap_f1, prf, rate, wilson


def test_eval_guardrails_on_a_slice(capsys: pytest.CaptureFixture[str]) -> None:
    datasets = SHARED / "datasets"
    if not (datasets / "injection" / "dev.jsonl").is_file():
        pytest.skip("shared datasets not found")
    assert main(["eval", "guardrails", "--datasets", str(datasets), "--limit", "40"]) == 0
    out = capsys.readouterr().out
    assert "injection (40 rows, 5-fold CV): rules + model (default)" in out
    assert "thresholds (direct/document) per fold, chosen on its training folds" in out
    assert "embedding classifier" not in out  # only with --classifier (it encodes every row)
    for kind in ("hijack", "extraction", "secret", "typo", "roleplay", "trigger", "switch", "pasted"):
        assert f"direct {kind}" in out
    assert "line addressed to the assistant  recall" in out and "search results  FPR" in out
    assert "notinject" in out and "xstest-safe" in out and "FPR" in out and "ordinary prompts" in out
    assert "latency benign" in out and "latency injection" in out
    assert "moderation texts (benign long-form" in out and "questions (paraphrase set" in out
    assert "pii, generated (400 sentences" in out and "IBAN_CODE      precision 1.000" in out
    assert "look-alikes flagged" in out and "timestamp 0.000" in out and "STREET_ADDRESS" in out
    assert "EMAIL_ADDRESS" in out and "not supported" in out and "PERSON" in out
    assert (
        "moderation (40 rows" in out and "2-fold CV)" in out and "phrases + classifier       flagged" in out
    )
    assert "chosen on training folds" in out and "at FPR <= 3 %" in out
    assert "generated, held-out templates" in out and "benign look-alikes        FPR" in out
    assert "harassment" in out and "illicit" in out and "everyday texts" in out
    assert "sexual" in out and "latency" in out


def test_a_missing_datasets_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "pii", "--datasets", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere is not a folder" in err and "--datasets DIR" in err and "shared/datasets" in err
    assert "Traceback" not in err
    assert main(["eval", "cache", "--datasets", str(tmp_path)]) == 2
    assert "has no paraphrase/dev.jsonl" in capsys.readouterr().err
    assert main(["eval", "guardrails", "--datasets", str(tmp_path)]) == 2


def test_any_folder_in_the_same_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"full_text": "Call me at +44 20 7946 0958", "spans": [
            {"entity_type": "PHONE_NUMBER", "entity_value": "+44 20 7946 0958", "start_position": 11,
             "end_position": 27}]},
        {"full_text": "Order 2024-01-15 10:30 shipped", "spans": []},
    ]  # fmt: skip
    (tmp_path / "pii").mkdir()
    (tmp_path / "pii" / "dev.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["eval", "guardrails", "--datasets", str(tmp_path), "--limit", "30"]) == 0
    out = capsys.readouterr().out
    assert "injection: skipped" in out and "moderation: skipped" in out
    assert "pii (2 rows, dev.jsonl" in out
    assert "PHONE_NUMBER   precision 1.000 [0.207-1.000]  recall 1.000 [0.207-1.000]" in out


def test_confidence_intervals() -> None:
    lo, hi = wilson(45, 50)
    assert (round(lo, 3), round(hi, 3)) == (0.786, 0.957)  # the Wilson score interval of 0.9 at n = 50
    assert wilson(0, 0) == (0.0, 1.0) and rate(0, 0).strip() == "—"
    assert rate(9, 10) == "0.900 [0.596-0.982]"
    lo, hi = bootstrap_f1([(1, 0, 0)] * 40 + [(0, 1, 0)] * 5 + [(0, 0, 1)] * 5)
    assert lo < 80 / 90 < hi and hi - lo < 0.2  # F1 = 2·40 / (80 + 5 + 5)
    assert prf(8, 2, 0).startswith("precision 0.800 [") and "recall 1.000" in prf(8, 2, 0)


def test_a_bad_row_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pii").mkdir()
    (tmp_path / "pii" / "dev.jsonl").write_text('{"full_text": "hi", "spans": [{"entity_type": "X"}]}\n')
    assert main(["eval", "pii", "--datasets", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "row 1: a span: field 'start_position' is missing or not of type int" in err
    (tmp_path / "pii" / "dev.jsonl").write_text("{not json\n")
    assert main(["eval", "pii", "--datasets", str(tmp_path)]) == 2
    assert "line 1 is not JSON" in capsys.readouterr().err
