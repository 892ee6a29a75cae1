#!/usr/bin/env bash
# Same-sitting A/B benchmark: a git ref (before) against the working tree (after), interleaved
# (before, after, before, after, …) so that drift in the shared machine's speed hits both alike.
#
#   bench/compare.sh REF [ROUNDS] [-- run.sh arguments]
#   bench/compare.sh f46df77 3 -- --only rate100-d0,rate500-d0,c64-d0,stream50-d100
#
# Each round runs bench/run.sh once per side with --reps 1; the summary (medians over rounds, and the
# after/before ratio) is printed and written to $BENCH_OUT (default /tmp/tollhouse-compare.md), the raw
# JSON lines beside it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REF="${1:?usage: bench/compare.sh REF [ROUNDS] [-- run.sh arguments]}"
shift
ROUNDS=3
if [[ $# -gt 0 && "$1" != "--" ]]; then ROUNDS="$1"; shift; fi
[[ "${1:-}" == "--" ]] && shift
OUT="${BENCH_OUT:-/tmp/tollhouse-compare.md}"
DIR="$(mktemp -d /tmp/tollhouse-compare.XXXXXX)"
for ((i = 1; i <= ROUNDS; i++)); do
  echo "== round $i/$ROUNDS: before ($REF)"
  BENCH_REF="$REF" BENCH_OUT="$DIR/before-$i.md" "$ROOT/bench/run.sh" --reps 1 "$@" >"$DIR/before-$i.log" 2>&1
  echo "== round $i/$ROUNDS: after (working tree)"
  BENCH_OUT="$DIR/after-$i.md" "$ROOT/bench/run.sh" --reps 1 "$@" >"$DIR/after-$i.log" 2>&1
done
cat "$DIR"/before-*.jsonl >"${OUT%.md}.before.jsonl"
cat "$DIR"/after-*.jsonl >"${OUT%.md}.after.jsonl"
python3 "$ROOT/bench/compare_report.py" "$REF" "${OUT%.md}.before.jsonl" "${OUT%.md}.after.jsonl" | tee "$OUT"
