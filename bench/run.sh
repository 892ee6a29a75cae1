#!/usr/bin/env bash
# Benchmark Tollhouse with the shared gateway benchmark kit (Go mock upstream + Go load generator +
# bench.py), gateway vs. direct-to-mock, everything on 127.0.0.1 and bounded in time and requests.
#
#   bench/run.sh                         # default matrix, 3 repetitions (~10 minutes)
#   bench/run.sh --reps 1 --duration 5   # extra arguments go to bench.py and override the defaults
#   bench/run.sh --only c64-d0           # one point
#
# The gateway is pinned to CPU 1, the load generator and the mock to CPU 0 (a 2-core machine).
# Output: $BENCH_OUT (default /tmp/tollhouse-bench.md) and the raw JSON lines next to it
# (${BENCH_OUT%.md}.jsonl, plus .meta.json). See docs/PERFORMANCE.md for how to read them.
#
# Environment:
#   BENCH_KIT      the kit's folder (default /work/shared/bench, else ../shared/bench from the project root)
#   BENCH_BIN      where the Go binaries are built (default /tmp/bench-bin)
#   BENCH_OUT      report path (default /tmp/tollhouse-bench.md)
#   BENCH_CONFIG   gateway config (default bench/tollhouse.bench.yaml)
#   BENCH_KEYS     1: the path users take: bench/tollhouse.bench-keys.yaml (rendered into a scratch folder),
#                  an issued API key with rate limits and budgets (created here), the ledger on
#   BENCH_SERVER   uvicorn (default: `tollhouse serve`) or granian (needs `pip install granian` in .venv)
#   BENCH_VENV     the virtualenv to run (default .venv in the project root)
#   BENCH_REF      a git ref (e.g. HEAD, a commit): benchmark that commit's src/ instead of the working tree
#                  (exported to a temporary folder and put first on PYTHONPATH; the .venv's packages are used)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

KIT="${BENCH_KIT:-}"
if [[ -z "$KIT" ]]; then
  for k in /work/shared/bench "$ROOT/../shared/bench"; do
    if [[ -f "$k/bench.py" ]]; then KIT="$(cd "$k" && pwd)"; break; fi
  done
fi
[[ -n "$KIT" && -f "$KIT/bench.py" ]] || { echo "benchmark kit not found: set BENCH_KIT" >&2; exit 2; }

BIN="${BENCH_BIN:-/tmp/bench-bin}"
OUT="${BENCH_OUT:-/tmp/tollhouse-bench.md}"
CONFIG="$(cd "$(dirname "${BENCH_CONFIG:-bench/tollhouse.bench.yaml}")" && pwd)/$(basename "${BENCH_CONFIG:-bench/tollhouse.bench.yaml}")"
SERVER="${BENCH_SERVER:-uvicorn}"
VENV="${BENCH_VENV:-$ROOT/.venv}"

[[ -x "$VENV/bin/python" ]] || { echo "no .venv: run 'make setup' first (or set BENCH_VENV)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 2; }

# ---- Go binaries (stdlib only: no module downloads needed) -------------------------------------------
build() {  # build <kit subfolder> <binary name>
  if [[ ! -x "$BIN/$2" ]]; then
    command -v go >/dev/null || { echo "go not found: apt-get install -y golang-go" >&2; exit 2; }
    mkdir -p "$BIN"
    echo "building $BIN/$2"
    (cd "$KIT/$1" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$BIN/$2" .)
  fi
}
build mock mockupstream
build loadgen loadgen

# ---- bench.py writes raw results next to itself: run a private copy so the shared kit stays untouched --
WORK="$(mktemp -d /tmp/tollhouse-bench-kit.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp "$KIT/bench.py" "$WORK/bench.py"

# ---- which code: the working tree, or one commit's src/ -------------------------------------------------
if [[ -n "${BENCH_REF:-}" ]]; then
  CODE="$(git -C "$ROOT" rev-parse --short "$BENCH_REF")"
  mkdir -p "$WORK/ref"
  git -C "$ROOT" archive "$BENCH_REF" src | tar -x -C "$WORK/ref"
  SRC="$WORK/ref/src"
else
  CODE="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || CODE="$CODE+uncommitted"
  SRC="$ROOT/src"  # the .venv may be an editable install of another checkout
fi

# ---- BENCH_KEYS=1: an issued key with limits and budgets, the ledger on, state in a scratch folder ----------
KEY_ARGS=()
if [[ "${BENCH_KEYS:-0}" == "1" ]]; then
  mkdir -p "$WORK/state"
  sed "s#@STATE@#$WORK/state#g" "$ROOT/bench/tollhouse.bench-keys.yaml" >"$WORK/state/tollhouse.yaml"
  CONFIG="$WORK/state/tollhouse.yaml"
  SECRET="$(cd "$WORK/state" && BENCH_KEY=sk-bench PYTHONPATH="$SRC" "$VENV/bin/python" -m tollhouse.cli \
    keys create --config "$CONFIG" --json --name bench --team bench --rpm 10000000 --tpm 1000000000 \
    --daily-usd 1000000 --monthly-usd 10000000 | "$VENV/bin/python" -c \
    'import json,sys; d=json.load(sys.stdin); print(d.get("secret") or d.get("key"))')"
  KEY_ARGS=(--key "$SECRET")
fi
GW_ENV="env BENCH_KEY=sk-bench TOLLHOUSE_CONFIG=$CONFIG PYTHONPATH=$SRC"

# ---- the gateway command (bench.py runs it with `exec taskset -c <cpus> …` in its own process group) ---
case "$SERVER" in
  uvicorn) GW_CMD="$GW_ENV $VENV/bin/python -m tollhouse.cli serve --config $CONFIG --port {port}" ;;
  granian)
    [[ -x "$VENV/bin/granian" ]] || { echo "granian not installed in .venv" >&2; exit 2; }
    GW_CMD="$GW_ENV $VENV/bin/granian --interface asgi --loop uvloop --host 127.0.0.1 --port {port} \
--workers 1 --no-ws --log-level warning --factory tollhouse.app:app_from_env" ;;
  *) echo "BENCH_SERVER must be uvicorn or granian" >&2; exit 2 ;;
esac

# Default matrix (~10 minutes with 3 repetitions): open-model rates with a 0 ms and a 100 ms upstream,
# closed-loop throughput, and stream time-to-first-byte. Later arguments override these.
python3 "$WORK/bench.py" \
  --mock-bin "$BIN/mockupstream" --loadgen "$BIN/loadgen" \
  --harness-cpus 0 \
  --gateway tollhouse --url http://127.0.0.1:8080/v1 --cpus 1 --cmd "$GW_CMD" \
  --rates 100,500,1000 --delays 0,100 --max-rate-delayed 500 \
  --conc 16,64 \
  --stream-rates 50 --stream-delay 100 --stream-chunk-ms 10 \
  --duration 8 --warmup 2 --timeout 10 --gw-warmup 5 \
  --reps 3 \
  --note "tollhouse code: $CODE, server $SERVER, config $CONFIG" \
  --out "$OUT" \
  "${KEY_ARGS[@]}" "$@"

# Keep the raw records next to the report.
raw="$(ls -t "$WORK"/results/raw/*.jsonl 2>/dev/null | head -1 || true)"
if [[ -n "$raw" ]]; then
  cp "$raw" "${OUT%.md}.jsonl"
  cp "${raw%.jsonl}.meta.json" "${OUT%.md}.meta.json"
  echo "raw records: ${OUT%.md}.jsonl (re-render: python3 $KIT/bench.py --render ${OUT%.md}.jsonl --out $OUT)"
fi
