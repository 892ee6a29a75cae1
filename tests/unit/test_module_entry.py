"""`python -m tollhouse` is the same command line as the `tollhouse` script."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "tollhouse", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_help_lists_the_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    assert "serve" in out.stdout and "keys" in out.stdout


def test_exit_code_is_passed_through() -> None:
    out = _run("no-such-command")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
