#!/usr/bin/env bash
# The store's own ceiling: rows per second and CPU time per row of cwhook's SQLite writer for
# rows shaped like the ingest benchmark's (bench/store_bench.cpp), without HTTP, pinned to one
# CPU like the daemon in bench/ingest.sh. Prints figures, judges nothing.
#
#   bench/store.sh
#
# Each batch size runs four schemas, so the table shows where a row's cost comes from:
#   cwhook   the real store: events table, dedupe key, 9 secondary indexes, writer thread;
#   noindex  the same with the 9 secondary indexes dropped;
#   dedupe   no cwhook code: the body and its dedupe key (UNIQUE) alone, same pragmas, one
#            thread. The least a receiver that recognises redeliveries pays;
#   bare     the same without the dedupe key: the body alone. The least any receiver that
#            keeps payloads in SQLite pays.
#
# Environment: ROWS (50000), BATCHES ("1 8 35 64 128 512"), SYNC_MODES ("full normal"),
# SCHEMAS ("cwhook noindex dedupe bare"), BENCH_TMPDIR (/tmp; the database lives there: use a real disk).
set -euo pipefail

ROWS=${ROWS:-50000}
BATCHES=${BATCHES:-"1 8 35 64 128 512"}
SYNC_MODES=${SYNC_MODES:-"full normal"}
SCHEMAS=${SCHEMAS:-"cwhook noindex dedupe bare"}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '== %s\n' "$*" >&2; }
"$ROOT/tools/install-deps.sh" >&2
log "building Release cwhook-store-bench in build-bench/"
BUILD_LOG=$(mktemp)
if ! { cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DCWHOOK_BUILD_TESTS=OFF &&
       cmake --build build-bench --target cwhook-store-bench; } >"$BUILD_LOG" 2>&1; then
  tail -40 "$BUILD_LOG" >&2
  echo "store.sh: build failed" >&2
  exit 1
fi
rm -f "$BUILD_LOG"

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/cwhook-store.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "cwhook store: $ROWS rows per run (~2.3 KB each; dedupe and bare: the ~1.6 KB body, with and without its dedupe key), fresh database, pinned to CPU 0"
printf '| sync | batch | schema | committed batch | rows/s | CPU us/row |\n|---|---|---|---|---|---|\n'
for sync in $SYNC_MODES; do
  for batch in $BATCHES; do
    for schema in $SCHEMAS; do
      rm -f "$WORK"/db*
      line=$(taskset -c 0 build-bench/cwhook-store-bench "$WORK/db" "$ROWS" "$batch" "$sync" "$schema")
      python3 - "$line" <<'PY'
import sys
f = dict(kv.split("=", 1) for kv in sys.argv[1].split()[1:])
print(f"| {f['sync']} | {f['batch']} | {f['schema']} | {float(f['committed_batch']):.1f} | {float(f['rows_per_s']):,.0f} | {float(f['cpu_us_per_row']):.1f} |")
PY
    done
  done
done
