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
    assert "injection (40 rows, 2-fold cross-validation): rules + lexical (default)" in out
    assert "injection (40 rows, 2-fold cross-validation): rules + lexical + embedding classifier" in out
    assert "notinject" in out and "xstest-safe" in out and "FPR" in out
    assert "EMAIL_ADDRESS" in out and "not supported" in out and "PERSON" in out
    assert "moderation (40 rows" in out and "latency" in out
