"""Libraries only some deployments use are imported when the feature is on, not with the app (idle memory
of a worker: docs/PERFORMANCE.md, ADR 0027)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPTIONAL = ("mcp", "redis", "asyncpg", "jsonschema", "onnxruntime", "hnswlib", "pypdf", "llama_cpp")


def test_the_app_and_its_default_runtime_leave_optional_libraries_unloaded(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from tollhouse.app import create_app\n"
        "from tollhouse.runtime import Runtime\n"
        "from tollhouse.settings import Settings\n"
        "from tollhouse.telemetry.observer import Telemetry\n"
        "s = Settings.model_validate({'embedded': {'chat': False, 'embeddings': False, 'completions': False},"
        " 'models': [{'name': 'm', 'provider': 'mock'}]})\n"
        "create_app(s)\n"
        "async def main():\n"
        "    async with Runtime.open(s, Telemetry(s)):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        f"print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == []
