#!/usr/bin/env bash
# cwhook forwarding benchmark: prints figures, judges nothing (always exits 0 once it has run).
#
#   bench/forward.sh
#
# The hot ingest run of ingest.sh (wrk, ingest.lua's signed ~1.5 KB deliveries, key cached,
# one fresh daemon and database per run), made twice:
#   (a) without destinations: ingest alone;
#   (b) with one [[destinations]] entry: a local sink (nginx, one worker, answering 204 to
#       everything it is sent; its access log keeps each request's webhook-id and connection).
# For (b), after wrk stops the script waits until the outbox is empty (no pending or failing
# delivery in the database), then reads from the database: the forward lag of every done
# delivery (deliveries.done_at_us - created_at_us: from the commit that made the event
# forwardable to the end of the successful attempt), how many were forwarded while wrk ran and
# how long the backlog took to drain; and checks the rows: every stored verified event has
# exactly one done delivery, every delivery belongs to one, and the sink saw every webhook-id.
#
# cwhook is pinned to CPU 0; wrk and the sink share CPU 1 (the sink stands for another
# machine: it should not take the daemon's core).
#
# Environment: DURATION (seconds per wrk run, 10), CONNS (64), PROTO (http or https), SYNC
# (storage.synchronous, full), FWD_CONCURRENCY (the destination's concurrency, 4: the
# default), FWD_RATE (its rate, 0 = no limit), FWD_ORDERING (none or entity, none),
# DRAIN_TIMEOUT (seconds to wait for the outbox to empty, 600), ROUNDS (1; more: pairs of
# runs, (a) then (b), each pair's ratio and their median), BENCH_TMPDIR (/tmp; the databases
# live there: use a real disk), KEEP=1 keeps the temp dir.
set -euo pipefail

[ $# -eq 0 ] || { echo "usage: $0   (settings through the environment, see the script's head)" >&2; exit 2; }
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
PROTO=${PROTO:-http}
SYNC=${SYNC:-full}
FWD_CONCURRENCY=${FWD_CONCURRENCY:-4}
FWD_RATE=${FWD_RATE:-0}
FWD_ORDERING=${FWD_ORDERING:-none}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
ROUNDS=${ROUNDS:-1}
CWHOOK_CPU=0   # the daemon
CLIENT_CPU=1   # wrk
SINK_CPU=1     # the destination
case "$PROTO" in http | https) ;; *) echo "$0: PROTO must be http or https" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BIN="$ROOT/build-bench/daemon/cwhook"
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
PY=/usr/bin/python3   # its sqlite3 module reads the databases

bench_prepare bench
bench_workdir

now_us() { date +%s%6N; }

# start_sink NAME: nginx answering 204 (body read and discarded) on CPU SINK_CPU, working in
# $WORK/NAME; one access log line per request: its webhook-id and connection number. Sets
# SINK_PID, SINK_PORT, SINK_LOG.
start_sink() {
  local dir="$WORK/$1"
  SINK_PORT=$(free_port)
  SINK_LOG="$dir/access.log"
  mkdir -p "$dir"
  local conf="$dir/nginx.conf"
  cat >"$conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  log_format hook '\$http_webhook_id \$connection';
  access_log $SINK_LOG hook buffer=64k flush=1s;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$SINK_PORT;
    location = /__ready { access_log off; return 200; }
    location / {
      client_max_body_size 1m;
      return 204;
    }
  }
}
EOF
  taskset -c "$SINK_CPU" nginx -p "$dir" -c "$conf" -e "$dir/error.log" >>"$dir/stdout.log" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  python3 "$BENCH/client.py" ready "http://127.0.0.1:$SINK_PORT/__ready" --timeout 15 ||
    { tail -20 "$dir/error.log" >&2; die "the sink (nginx) did not start"; }
}

outbox_depth() {  # outbox_depth DB: pending and failing deliveries
  sqlite3 "$1" "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'failing');" 2>/dev/null || echo "?"
}

# wait_drained DB DEADLINE_S: polls until the outbox is empty; returns 1 on timeout
wait_drained() {
  local db=$1 deadline=$(($(date +%s) + $2)) depth last=0
  while :; do
    depth=$(outbox_depth "$db")
    [ "$depth" = 0 ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    if [ $(($(date +%s) - last)) -ge 5 ]; then
      log "  outbox: $depth deliveries to go"
      last=$(date +%s)
    fi
    sleep 0.1
  done
}

# ------------------------------------------------------------------ one run

# run NAME [VAR=VALUE...]: a fresh daemon and database, the warm-up delivery, wrk; for a run
# with destinations, the drain. Leaves $WORK/NAME.* (wrk output, metrics, CPU snapshots,
# times) and keeps the database for the report.
run() {
  local name=$1
  shift
  local forwarding=0 a
  for a in "$@"; do [[ "$a" != CWHOOK_CONFIG=* ]] || forwarding=1; done
  start_cwhook "$SYNC" "$@"
  python3 "$BENCH/client.py" deliver "http://127.0.0.1:$CW_PORT/callbacks" \
    --key-url "$KEY_URL" --key "$SIGNING_KEY" >"$WORK/warm.out" 2>&1 ||
    { cat "$WORK/warm.out" >&2; tail -20 "$WORK/cwhook.log" >&2; die "warm-up delivery was not stored"; }
  if [ "$forwarding" = 1 ]; then
    wait_drained "$CW_DB" 30 || { tail -20 "$WORK/cwhook.log" >&2; die "the warm-up delivery was not forwarded"; }
  fi
  local url="http://127.0.0.1:$CW_PORT/callbacks"
  [ "$PROTO" = https ] && url="https://127.0.0.1:$CW_TLS_PORT/callbacks"
  local snap=("cwhook=$CW_PID")
  [ "$forwarding" = 0 ] || snap+=("sink=$SINK_PID+")

  read -r b_sum0 b_n0 s_sum0 s_n0 < <(store_metrics "$CW_ADMIN_PORT")
  python3 "$BENCH/cputime.py" snap "$WORK/$name.cpu0" "${snap[@]}"
  log "$name: cwhook $PROTO c=$CONNS sync=$SYNC (${DURATION}s)"
  local start end
  start=$(now_us)
  run_wrk "$url" "$CONNS" "$WORK/$name.wrk" "$WORK/$name.wrktime"
  end=$(now_us)
  python3 "$BENCH/cputime.py" snap "$WORK/$name.cpu1" "${snap[@]}"
  read -r b_sum1 b_n1 s_sum1 s_n1 < <(store_metrics "$CW_ADMIN_PORT")
  sleep 0.5   # let requests still in flight when wrk stopped finish
  local drained=-
  if [ "$forwarding" = 1 ]; then
    log "$name: waiting for the outbox to drain (at most ${DRAIN_TIMEOUT}s)"
    drained=yes
    wait_drained "$CW_DB" "$DRAIN_TIMEOUT" || drained="no (timeout ${DRAIN_TIMEOUT}s)"
    python3 "$BENCH/cputime.py" snap "$WORK/$name.cpu2" "${snap[@]}"
  fi
  local drained_at
  drained_at=$(now_us)
  read -r b_sum2 b_n2 s_sum2 s_n2 < <(store_metrics "$CW_ADMIN_PORT")
  local rss rc=0
  rss=$(vmhwm_mib "$CW_PID")
  stop_pid "$CW_PID" || rc=$?
  {
    echo "db=$CW_DB"
    echo "start_us=$start"
    echo "end_us=$end"
    echo "drained_at_us=$drained_at"
    echo "drained=$drained"
    echo "rss=$rss"
    echo "exit=$rc"
    echo "store_wrk=$b_sum0 $b_n0 $s_sum0 $s_n0 $b_sum1 $b_n1 $s_sum1 $s_n1"
    echo "store_drain=$b_sum1 $b_n1 $s_sum1 $s_n1 $b_sum2 $b_n2 $s_sum2 $s_n2"
  } >"$WORK/$name.facts"
}

# ------------------------------------------------------------------ reading the results

facts() { sed -n "s/^$2=//p" "$WORK/$1.facts"; }

# CPU shares between two snapshots: "cwhook 73% (cwhook-store 45%, ...); sink ...|us/request|CPU0|CPU1"
cpu_between() {  # cpu_between BEFORE AFTER REQUESTS
  local lines line label pct us parts breakdown="" server_us=0 cpu0 cpu1
  lines=$(python3 "$BENCH/cputime.py" diff "$1" "$2" --requests "$3" --cpu "$CWHOOK_CPU" --cpu "$CLIENT_CPU")
  while IFS=$'\t' read -r line label pct us parts; do
    if [ "$line" = CPU ]; then
      if [ "$label" = cwhook ] && [[ "$us" =~ ^[0-9]+$ ]]; then server_us=$us; fi
      breakdown+="${breakdown:+; }$label $pct% ($parts)"
    fi
  done <<<"$lines"
  cpu0=$(awk -F'\t' -v c="$CWHOOK_CPU" '$1 == "BUSY" && $2 == c { print $3 }' <<<"$lines")
  cpu1=$(awk -F'\t' -v c="$CLIENT_CPU" '$1 == "BUSY" && $2 == c { print $3 }' <<<"$lines")
  printf '%s|%s|%s|%s\n' "$breakdown" "$server_us" "$cpu0" "$cpu1"
}

# commits during a phase: "mean batch|mean commit ms|commits/s" from the store's histograms
commits() {  # commits NAME store_wrk|store_drain SECONDS
  facts "$1" "$2" | awk -v d="$3" '{ n = $6 - $2; m = $8 - $4;
    printf "%s|%s|%.0f\n", (n > 0 ? sprintf("%.1f", ($5 - $1) / n) : "-"), (m > 0 ? sprintf("%.2f", 1000 * ($7 - $3) / m) : "-"),
           (d > 0 ? n / d : 0) }'
}

# forward_report NAME SINK_LOG: what the database of a run with the sink says, as key=value lines
forward_report() {
  "$PY" - "$(facts "$1" db)" "$(facts "$1" start_us)" "$(facts "$1" end_us)" "$2" <<'PYTHON'
import sqlite3, sys
db, start, end, sink_log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
q = lambda sql, *a: c.execute(sql, a).fetchone()[0]
out = {}
out["events"] = q("SELECT count(*) FROM events")
out["verified"] = q("SELECT count(*) FROM events WHERE status = 'verified'")
out["deliveries"] = q("SELECT count(*) FROM deliveries")
out["done_rows"] = q("SELECT count(*) FROM deliveries WHERE state = 'done'")
out["undone"] = q("SELECT count(*) FROM deliveries WHERE state <> 'done'")
# (A correlated count per event would search deliveries by state, not by event: quadratic.)
out["not_one_done"] = q("""SELECT count(*) FROM events e LEFT JOIN
    (SELECT event_id, count(*) AS n FROM deliveries WHERE state = 'done' GROUP BY event_id) d ON d.event_id = e.id
    WHERE e.status = 'verified' AND coalesce(d.n, 0) <> 1""")
out["orphans"] = q("""SELECT count(*) FROM deliveries d WHERE NOT EXISTS
    (SELECT 1 FROM events e WHERE e.id = d.event_id AND e.status = 'verified')""")
out["attempts"] = q("SELECT count(*) FROM delivery_attempts")
out["failed_attempts"] = q("SELECT count(*) FROM delivery_attempts WHERE http_status NOT BETWEEN 200 AND 299")
# The run's deliveries: made forwardable after wrk started (the warm-up delivery left out).
lags = [r[0] for r in c.execute(
    "SELECT done_at_us - created_at_us FROM deliveries WHERE state = 'done' AND created_at_us >= ? ORDER BY 1", (start,))]
def pct(p):
    if not lags:
        return float("nan")
    return lags[min(len(lags) - 1, max(0, -(-len(lags) * p // 100) - 1))] / 1e6
out["lag_n"] = len(lags)
out["lag_p50_s"] = f"{pct(50):.3f}"
out["lag_p99_s"] = f"{pct(99):.3f}"
out["lag_max_s"] = f"{(lags[-1] / 1e6 if lags else float('nan')):.3f}"
out["done_during"] = q("SELECT count(*) FROM deliveries WHERE state = 'done' AND done_at_us BETWEEN ? AND ?", start, end)
out["backlog_at_end"] = q("""SELECT count(*) FROM deliveries WHERE created_at_us <= ? AND
    (state <> 'done' OR done_at_us > ?)""", end, end)
last = q("SELECT max(done_at_us) FROM deliveries WHERE state = 'done'") or end
out["drain_s"] = f"{max(last - end, 0) / 1e6:.2f}"
out["done_after"] = q("SELECT count(*) FROM deliveries WHERE state = 'done' AND done_at_us > ?", end)
lines = [l.split() for l in open(sink_log) if l.strip()]
ids = [f[0] for f in lines if f[0] != "-"]
out["sink_requests"] = len(ids)
out["sink_distinct"] = len(set(ids))
out["sink_connections"] = len({f[1] for f in lines if len(f) > 1})
for k, v in out.items():
    print(f"{k}={v}")
PYTHON
}

INGEST_ROWS="$WORK/ingest.rows"
RATIOS="$WORK/ratios"
FORWARD_ROWS="$WORK/forward.rows"
DRAIN_NOTES="$WORK/drain.notes"
CHECK_LINES="$WORK/checks"
CPU_LINES="$WORK/cpu"
: >"$INGEST_ROWS"
: >"$RATIOS"
: >"$FORWARD_ROWS"
: >"$DRAIN_NOTES"
: >"$CHECK_LINES"
: >"$CPU_LINES"

# ingest_row LABEL NAME: a row of the ingest table, the run's row check and its CPU line
ingest_row() {
  local label=$1 name=$2 out="$WORK/$2.wrk" errs rows check cpu us c0 c1 batch ms cps
  errs=$(($(field "$out" err_connect) + $(field "$out" err_read) + $(field "$out" err_write) + $(field "$out" err_timeout)))
  # the warm-up delivery left out
  rows=$(sqlite3 "$(facts "$name" db)" "SELECT count(*) - 1 FROM events;")
  check=$(judge_rows "$rows" "$(field "$out" stored)" "$(($(field "$out" sent) - $(field "$out" responses)))")
  IFS='|' read -r cpu us c0 c1 < <(cpu_between "$WORK/$name.cpu0" "$WORK/$name.cpu1" "$(field "$out" requests)")
  IFS='|' read -r batch ms cps < <(commits "$name" store_wrk "$DURATION")
  printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(field "$out" rps)" \
    "$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "$(field "$out" p999_ms)" "$(field "$out" non2xx)" "$errs" \
    "$check" "$(facts "$name" rss)" "$batch" "$ms" "$cps" "$us" >>"$INGEST_ROWS"
  echo "  $label: rows=$rows stored-2xx=$(field "$out" stored)" \
    "in-flight-at-stop=$(($(field "$out" sent) - $(field "$out" responses))) -> $check" >>"$CHECK_LINES"
  [ "$(facts "$name" exit)" = 0 ] || echo "  $label: the daemon's exit status $(facts "$name" exit) after SIGTERM" >>"$CHECK_LINES"
  echo "  $label, wrk run: $cpu; CPU $CWHOOK_CPU busy $c0%, CPU $CLIENT_CPU busy $c1%" >>"$CPU_LINES"
}

# forward_rows LABEL NAME SINK_LOG: the forwarding table's row of a run with the sink, its
# drain note, its checks and the drain's CPU line
forward_rows() {
  local label=$1 name=$2 rep="$WORK/$2.report"
  forward_report "$name" "$3" >"$rep"
  fw() { sed -n "s/^$1=//p" "$rep"; }
  local drain_s rate_during rate_after drain_wall cpu us c0 c1 batch ms cps verdict=OK sink_verdict=OK
  drain_s=$(fw drain_s)
  rate_during=$(awk -v n="$(fw done_during)" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }')
  rate_after=$(awk -v n="$(fw done_after)" -v d="$drain_s" 'BEGIN { if (d > 0) printf "%.0f", n / d; else printf "-" }')
  echo "| $label | $(fw deliveries) | $(fw done_rows) | $(fw done_during) | $rate_during | $(fw backlog_at_end) | $drain_s |" \
    "$rate_after | $(fw lag_p50_s) | $(fw lag_p99_s) | $(fw lag_max_s) | $(fw attempts) | $(fw failed_attempts) |" \
    "$(fw sink_requests) | $(fw sink_distinct) | $(fw sink_connections) |" >>"$FORWARD_ROWS"
  drain_wall=$(awk -v a="$(facts "$name" end_us)" -v b="$(facts "$name" drained_at_us)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
  IFS='|' read -r batch ms cps < <(commits "$name" store_drain "$drain_wall")
  echo "  $label: the outbox was seen empty $drain_wall s after wrk's end (polling, after a 0.5 s pause; drained:" \
    "$(facts "$name" drained)); the store meanwhile: mean batch $batch, mean commit $ms ms, $cps commits/s" >>"$DRAIN_NOTES"
  [ "$(fw deliveries)" = "$(fw verified)" ] && [ "$(fw done_rows)" = "$(fw verified)" ] && [ "$(fw not_one_done)" = 0 ] &&
    [ "$(fw orphans)" = 0 ] || verdict=MISMATCH
  [ "$(fw sink_distinct)" = "$(fw done_rows)" ] || sink_verdict=MISMATCH
  echo "  $label, outbox: events stored $(fw events) (verified $(fw verified), the warm-up included), deliveries $(fw deliveries)," \
    "done $(fw done_rows), not done $(fw undone); verified events without exactly one done delivery: $(fw not_one_done);" \
    "deliveries of no verified event: $(fw orphans) -> $verdict" >>"$CHECK_LINES"
  echo "  $label, sink: $(fw sink_requests) requests over $(fw sink_connections) connections, $(fw sink_distinct) distinct" \
    "webhook-ids (done: $(fw done_rows); at least once allows repeats: $(($(fw sink_requests) - $(fw sink_distinct)))) -> $sink_verdict" \
    >>"$CHECK_LINES"
  IFS='|' read -r cpu us c0 c1 < <(cpu_between "$WORK/$name.cpu1" "$WORK/$name.cpu2" "$(fw done_after)")
  echo "  $label, the drain: $cpu; CPU $CWHOOK_CPU busy $c0%, CPU $CLIENT_CPU busy $c1%;" \
    "cwhook CPU us per forwarded delivery: $us" >>"$CPU_LINES"
}

# ------------------------------------------------------------------ main

echo "cwhook forwarding benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: nproc=$(nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cwhook $("$BIN" --version 2>/dev/null | head -n1) Release; $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | sed 's/.*: //')"
echo "cwhook (server.threads default) pinned to CPU $CWHOOK_CPU; wrk on CPU $CLIENT_CPU, the sink (nginx, one worker, 204) on CPU $SINK_CPU;" \
  "${DURATION}s per run; wrk -t1 -c$CONNS keep-alive over $PROTO, timeout 5s; storage.synchronous $SYNC"
echo "destination: one, http://127.0.0.1:PORT/hooks, body raw, concurrency $FWD_CONCURRENCY," \
  "rate $FWD_RATE$([ "$FWD_RATE" = 0 ] && echo ' (no limit)'), ordering $FWD_ORDERING, timeout 10s$([ "$ROUNDS" = 1 ] || echo "; $ROUNDS rounds, each (a) then (b)")"
echo

# shellcheck disable=SC2119  # no delay: the key server answers at once
start_keyserver
KEY_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
KEY_URL="https://127.0.0.1:$KS_PORT/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=$KEY_ID"
printf 'whsec_%s\n' "$(openssl rand -base64 32)" >"$WORK/sink.secret"
chmod 600 "$WORK/sink.secret"

for round in $(seq 1 "$ROUNDS"); do
  suffix=""
  [ "$ROUNDS" = 1 ] || suffix=" #$round"
  # (a) ingest alone
  run "plain$round"
  # (b) one destination: the sink
  start_sink "sink$round"
  cat >"$WORK/forward$round.toml" <<EOF
[[destinations]]
name = "sink"
url = "http://127.0.0.1:$SINK_PORT/hooks"
secret_file = "$WORK/sink.secret"
timeout = "10s"
rate = $FWD_RATE
concurrency = $FWD_CONCURRENCY
ordering = "$FWD_ORDERING"
EOF
  run "forward$round" "CWHOOK_CONFIG=$WORK/forward$round.toml"
  stop_pid "$SINK_PID" || true   # writes out the buffered access log

  ingest_row "no destination$suffix" "plain$round"
  ingest_row "1 destination$suffix" "forward$round"
  awk -v a="$(field "$WORK/plain$round.wrk" rps)" -v b="$(field "$WORK/forward$round.wrk" rps)" -v s="$suffix" \
    'BEGIN { printf "%.4f with / without forwarding%s: %.2fx (%.0f against %.0f req/s)\n", b / a, s, b / a, b, a }' >>"$RATIOS"
  forward_rows "1 destination$suffix" "forward$round" "$SINK_LOG"
done
KEY_FETCHES=$(key_fetches 2>/dev/null || echo '?')
stop_pid "$KS_PID" || true

echo "Ingest (key cached; fresh daemon and database per run):"
echo "| run | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx | sock err | rows | peak RSS MiB | mean batch | mean commit ms | commits/s | cwhook CPU us/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
cat "$INGEST_ROWS"
cut -d' ' -f2- "$RATIOS"
if [ "$ROUNDS" -gt 1 ]; then
  sort -n "$RATIOS" | awk '{ r[NR] = $1 } END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2;
    printf "median of the %d rounds: %.2fx\n", NR, m }'
fi
echo
echo "Forwarding (the runs with the destination; lag = done_at_us - created_at_us of each done delivery made while wrk ran;"
echo "drain s = from wrk's end to the end of the last successful attempt):"
echo "| run | deliveries | done | done while wrk ran | forwarded/s while wrk ran | backlog at wrk's end | drain s | forwarded/s draining | lag p50 s | lag p99 s | lag max s | attempts | failed attempts | sink requests | distinct webhook-ids | sink connections |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
cat "$FORWARD_ROWS"
cat "$DRAIN_NOTES"
echo
echo "Rows checked:"
cat "$CHECK_LINES"
echo "  key fetches: $KEY_FETCHES (one per daemon start expected: $((2 * ROUNDS)))"
echo
echo "Where the CPU time went (share of one core; /proc, bench/cputime.py):"
cat "$CPU_LINES"
echo
echo "database temp dir file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 }'); cwhook log lines (warn and above): $(wc -l <"$WORK/cwhook.log")"
if [ -s "$WORK/cwhook.log" ]; then
  echo "cwhook log lines (distinct, first 5):"
  sed 's/^[0-9TZ:.-]* //; s/ server=.*//' "$WORK/cwhook.log" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /'
fi
exit 0
