"""``tollhouse eval guardrails`` on a small slice of the shared dev sets (the full run is in docs)."""

from __future__ import annotations

import pytest
from tests.conftest import SHARED

from tollhouse.cli import main


def test_eval_guardrails_on_a_slice(capsys: pytest.CaptureFixture[str]) -> None:
    datasets = SHARED / "datasets"
    if not (datasets / "injection" / "dev.jsonl").is_file():
        pytest.skip("shared datasets not found")
    assert main(["eval", "guardrails", "--datasets", str(datasets), "--limit", "40"]) == 0
    out = capsys.readouterr().out
    assert "injection (40 rows, 2-fold cross-validation): rules + model (default)" in out
    assert "injection (40 rows, 2-fold cross-validation): rules + model + embedding classifier" in out
    assert "notinject" in out and "xstest-safe" in out and "FPR" in out and "ordinary prompts" in out
    assert "latency benign" in out and "latency injection" in out
    assert "moderation texts (benign long-form" in out and "questions (paraphrase set" in out
    assert "IBAN_CODE      recall 1.000 on 300 synthetic" in out
    assert "EMAIL_ADDRESS" in out and "not supported" in out and "PERSON" in out
    assert "moderation (40 rows" in out and "rules + classifier (2-fold CV) flagged" in out
    assert "sexual" in out and "latency" in out
