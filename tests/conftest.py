"""Shared fixtures: settings without the embedded models, an in-process client, OpenAI schema validation."""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from tests.support.pgvector_server import pgvector_dsn, pgvector_server  # noqa: F401  (PG with pgvector)
from tests.support.servers import pg_proxy, throwaway_redis  # noqa: F401  (outage tests: servers a test stops)
from tests.support.stores import pg_dsn, redis_prefix  # noqa: F401  (shared fixtures: real PG / Redis)
from tollhouse.app import create_app
from tollhouse.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# The shared dev data sits next to the project (../shared); a clone elsewhere finds it through
# TOLLHOUSE_SHARED or at /work/shared.
SHARED = next(
    (
        p
        for p in (Path(os.environ.get("TOLLHOUSE_SHARED", ROOT.parent / "shared")), Path("/work/shared"))
        if (p / "datasets").is_dir()
    ),
    ROOT.parent / "shared",
)
_TMP = tempfile.mkdtemp(prefix="tollhouse-tests-")
OPENAPI = SHARED / "datasets" / "openai-openapi" / "openapi.yaml"


def mock_settings(**models: dict[str, Any]) -> Settings:
    """Settings serving only mock models (no embedded model load). ``models`` maps name → extra fields."""
    entries = [{"name": "mock", "provider": "mock", "aliases": ["mock-alias"], "max_output_tokens": 256}]
    entries += [{"name": n, "provider": "mock", **fields} for n, fields in models.items()]
    return Settings.model_validate(
        {
            "embedded": {"chat": False, "embeddings": False},
            "models": entries,
            "logging": {"format": "text"},
            # A fresh key store per app (a key created by one test must not lock out another) and no
            # ledger unless a test turns it on: nothing is written to the working directory.
            "keys": {"sqlite_path": str(Path(_TMP) / f"keys-{uuid.uuid4().hex}.db")},
            "ledger": {"enabled": False},
            # Tests that repeat a request expect it to reach the provider; cache tests turn it on.
            "cache": {"mode": "off"},
        }
    )


@pytest.fixture(autouse=True, scope="session")
def _scratch_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Apps built with default settings keep keys and the ledger in ./tollhouse.db and ./tollhouse-ledger:
    run the suite from a scratch directory so nothing lands in the repository."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(
        mock_settings(
            slow={"latency_ms": 50},
            limited={"fail_status": 429, "retry_after_s": 7},
            down={"fail_status": 503},
            broken={"fail_status": 500},
            timeout={"fail_status": 504},
            fixed={"reply": "one two three four five six", "chunk_ms": 1},
        )
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@functools.cache
def _openapi() -> dict[str, Any]:
    if not OPENAPI.is_file():
        pytest.skip(f"OpenAI spec not found at {OPENAPI}")
    with OPENAPI.open() as f:
        spec: dict[str, Any] = yaml.safe_load(f)
    return _nullable_to_null(spec)  # type: ignore[no-any-return]


def _nullable_to_null(node: Any) -> Any:
    """The spec mixes OpenAPI 3.0's ``nullable: true`` into 3.1 schemas; express it in JSON Schema terms."""
    if isinstance(node, list):
        return [_nullable_to_null(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_null(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def assert_openai_shape(schema_name: str, obj: Any) -> None:
    """Validate ``obj`` against ``#/components/schemas/<schema_name>`` of the official OpenAI spec."""
    spec = _openapi()
    root = {**spec, "$ref": f"#/components/schemas/{schema_name}"}
    errors = sorted(Draft202012Validator(root).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{schema_name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def sse_data(text: str) -> list[dict[str, Any]]:
    """The JSON objects of an SSE body's ``data:`` lines (``[DONE]`` left out)."""
    return [
        orjson.loads(line[len("data: ") :])
        for line in text.split("\n\n")
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
