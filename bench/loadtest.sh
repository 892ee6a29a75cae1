#!/usr/bin/env bash
# `make loadtest`: 100 locust users for a bounded time against one gateway worker in front of the benchmark
# kit's Go mock upstream, then a Markdown report.
#
#   bench/loadtest.sh                       # 100 users, 60 s, mock latency 20 ms
#   LOADTEST_USERS=50 LOADTEST_TIME=30s bench/loadtest.sh
#
# Environment: LOADTEST_USERS (100), LOADTEST_SPAWN (20 users/s), LOADTEST_TIME (60s), LOADTEST_MOCK_MS
# (20: the mock's delay before its first byte), LOADTEST_OUT (report folder, default /tmp/tollhouse-loadtest),
# BENCH_KIT (the kit's folder, default /work/shared/bench or ../shared/bench), BENCH_BIN (/tmp/bench-bin).
# Needs: `pip install -e '.[loadtest]'` (locust) and Go to build the mock once (apt-get install golang-go).
# The gateway is pinned to CPU 1, locust and the mock to CPU 0 when there are two or more CPUs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever the venv holds
USERS="${LOADTEST_USERS:-100}"
SPAWN="${LOADTEST_SPAWN:-20}"
TIME="${LOADTEST_TIME:-60s}"
MOCK_MS="${LOADTEST_MOCK_MS:-20}"
OUT="${LOADTEST_OUT:-/tmp/tollhouse-loadtest}"
BIN="${BENCH_BIN:-/tmp/bench-bin}"
PORT=8090

KIT="${BENCH_KIT:-}"
if [[ -z "$KIT" ]]; then
  for k in /work/shared/bench "$ROOT/../shared/bench"; do
    if [[ -f "$k/mock/main.go" ]]; then KIT="$(cd "$k" && pwd)"; break; fi
  done
fi
[[ -n "$KIT" && -f "$KIT/mock/main.go" ]] || { echo "benchmark kit not found: set BENCH_KIT" >&2; exit 2; }
[[ -x "$VENV/bin/locust" ]] || { echo "locust not found: $VENV/bin/pip install -e '.[loadtest]'" >&2; exit 2; }
if [[ ! -x "$BIN/mockupstream" ]]; then
  command -v go >/dev/null || { echo "go not found: apt-get install -y golang-go" >&2; exit 2; }
  mkdir -p "$BIN"
  (cd "$KIT/mock" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$BIN/mockupstream" .)
fi

pin() { if [[ "$(nproc)" -ge 2 ]] && command -v taskset >/dev/null; then echo "taskset -c $1"; fi; }
mkdir -p "$OUT"
rm -f "$OUT"/locust_*.csv
WORK="$(mktemp -d /tmp/tollhouse-loadtest.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

setsid $(pin 0) "$BIN/mockupstream" -addr 127.0.0.1:18080 -delay-ms "$MOCK_MS" -chunk-ms 2 -chunks 8 \
  >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
export LOADTEST_ADMIN_KEY="sk-loadtest-admin-$(date +%s%N)"
# A scratch folder: the key store, ledger and journal of this run only.
(cd "$WORK" && exec setsid $(pin 1) "$VENV/bin/tollhouse" serve --config "$ROOT/bench/tollhouse.loadtest.yaml" \
  --port "$PORT") >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null || { cat "$WORK/gateway.log" >&2; exit 1; }

echo "locust: $USERS users, spawn $SPAWN/s, $TIME, mock latency $MOCK_MS ms"
$(pin 0) "$VENV/bin/locust" -f "$ROOT/bench/locustfile.py" --host "http://127.0.0.1:$PORT" --headless \
  -u "$USERS" -r "$SPAWN" -t "$TIME" --stop-timeout 10 --csv "$OUT/locust" --html "$OUT/locust.html" \
  --only-summary --exit-code-on-error 0 2>"$WORK/locust.log" || { tail -20 "$WORK/locust.log" >&2; exit 1; }
cp "$WORK/gateway.log" "$OUT/gateway.log"
"$VENV/bin/python" "$ROOT/bench/loadtest_report.py" "$OUT" --users "$USERS" --time "$TIME" --mock-ms "$MOCK_MS" \
  | tee "$OUT/report.md"
