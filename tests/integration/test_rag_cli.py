"""``tollhouse rag`` against real stores: ingest a folder into SQLite (bad files reported and skipped, a
second run changes nothing), copy the collection to PostgreSQL without embedding again, search it there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tollhouse.cli import main


def _config(path: Path, rag: dict[str, object]) -> str:
    path.write_text(yaml.safe_dump({"rag": rag, "ledger": {"enabled": False}}))
    return str(path)


def test_ingest_then_copy_to_postgres(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "leave.md").write_text("# Leave\nEveryone gets 27 days of paid leave per year.")
    (docs / "sub" / "office.html").write_text("<h1>Office</h1><p>The Wi-Fi network is called heron-5g.</p>")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (docs / "empty.txt").write_text("")
    lite = _config(tmp_path / "lite.yaml", {"sqlite_path": str(tmp_path / "rag.db")})
    monkeypatch.setenv("TH_RAG_PG", pg_dsn)
    pg = _config(
        tmp_path / "pg.yaml",
        {"backend": "postgres", "postgres_dsn_env": "TH_RAG_PG", "postgres_prefix": "ragcli"},
    )

    assert (
        main(["rag", "ingest", str(docs), "--collection", "hb", "--create", "--quiet", "--config", lite]) == 1
    )
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert (summary["created"], summary["failed"]) == (2, 2)
    assert "broken.pdf" in out.err and "empty.txt: the document is empty" in out.err
    assert main(["rag", "ingest", str(docs), "--collection", "hb", "--quiet", "--config", lite]) == 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["unchanged"] == 2

    assert main(["rag", "copy", "--collection", "hb", "--config", lite, "--to-config", pg]) == 0
    copied = json.loads(capsys.readouterr().out)
    assert (copied["documents"], copied["chunks"], copied["dimensions"]) == (2, 2, 384)
    assert main(["rag", "search", "--collection", "hb", "--config", pg, "wifi network name", "-k", "1"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["document_id"] == "sub/office.html" and hits[0]["heading"] == "Office"
    assert main(["rag", "copy", "--collection", "hb", "--config", lite, "--to-config", pg]) == 1  # exists
    assert "exists already" in capsys.readouterr().err
