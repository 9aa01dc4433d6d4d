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
# DRAIN_TIMEOUT (seconds to wait for the outbox to empty, 600), BENCH_TMPDIR (/tmp; the
# databases live there: use a real disk), KEEP=1 keeps the temp dir.
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

# start_sink: nginx answering 204 (body read and discarded) on CPU SINK_CPU; one access log
# line per request: its webhook-id and connection number. Sets SINK_PID, SINK_PORT, SINK_LOG.
start_sink() {
  SINK_PORT=$(free_port)
  SINK_LOG="$WORK/sink/access.log"
  mkdir -p "$WORK/sink"
  local conf="$WORK/sink/nginx.conf"
  cat >"$conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/sink/nginx.pid;
error_log $WORK/sink/error.log warn;
events { worker_connections 4096; }
http {
  log_format hook '\$http_webhook_id \$connection';
  access_log $SINK_LOG hook buffer=64k flush=1s;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $WORK/sink/body;
  proxy_temp_path $WORK/sink/proxy;
  fastcgi_temp_path $WORK/sink/fastcgi;
  uwsgi_temp_path $WORK/sink/uwsgi;
  scgi_temp_path $WORK/sink/scgi;
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
  taskset -c "$SINK_CPU" nginx -p "$WORK/sink" -c "$conf" -e "$WORK/sink/error.log" >>"$WORK/sink/stdout.log" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  python3 "$BENCH/client.py" ready "http://127.0.0.1:$SINK_PORT/__ready" --timeout 15 ||
    { tail -20 "$WORK/sink/error.log" >&2; die "the sink (nginx) did not start"; }
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

# ------------------------------------------------------------------ main

echo "cwhook forwarding benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: nproc=$(nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cwhook $("$BIN" --version 2>/dev/null | head -n1) Release; $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | sed 's/.*: //')"
echo "cwhook (server.threads default) pinned to CPU $CWHOOK_CPU; wrk on CPU $CLIENT_CPU, the sink (nginx, one worker, 204) on CPU $SINK_CPU;" \
  "${DURATION}s per run; wrk -t1 -c$CONNS keep-alive over $PROTO, timeout 5s; storage.synchronous $SYNC"

# shellcheck disable=SC2119  # no delay: the key server answers at once
start_keyserver
KEY_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
KEY_URL="https://127.0.0.1:$KS_PORT/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=$KEY_ID"

# (a) ingest alone
run plain

# (b) one destination: the sink
start_sink
printf 'whsec_%s\n' "$(openssl rand -base64 32)" >"$WORK/sink.secret"
chmod 600 "$WORK/sink.secret"
cat >"$WORK/forward.toml" <<EOF
[[destinations]]
name = "sink"
url = "http://127.0.0.1:$SINK_PORT/hooks"
secret_file = "$WORK/sink.secret"
timeout = "10s"
rate = $FWD_RATE
concurrency = $FWD_CONCURRENCY
ordering = "$FWD_ORDERING"
EOF
run forward "CWHOOK_CONFIG=$WORK/forward.toml"
stop_pid "$SINK_PID" || true   # writes out the buffered access log
KEY_FETCHES=$(key_fetches 2>/dev/null || echo '?')
stop_pid "$KS_PID" || true
echo "destination: one, http://127.0.0.1:$SINK_PORT/hooks, body raw, concurrency $FWD_CONCURRENCY," \
  "rate $FWD_RATE$([ "$FWD_RATE" = 0 ] && echo ' (no limit)'), ordering $FWD_ORDERING, timeout 10s"
echo

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

facts() { sed -n "s/^$2=//p" "$WORK/$1.facts"; }

# what the database says about run (b), as key=value lines
forward_report() {
  "$PY" - "$(facts forward db)" "$(facts forward start_us)" "$(facts forward end_us)" "$SINK_LOG" <<'EOF'
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
out["created_after_end"] = q("SELECT count(*) FROM deliveries WHERE created_at_us > ?", end)
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
EOF
}

FWD="$WORK/forward.report"
forward_report >"$FWD"
fw() { sed -n "s/^$1=//p" "$FWD"; }

# commits during a phase: "mean batch|mean commit ms|commits/s" from the store's histograms
commits() {  # commits NAME store_wrk|store_drain SECONDS
  facts "$1" "$2" | awk -v d="$3" '{ n = $6 - $2; m = $8 - $4;
    printf "%s|%s|%.0f\n", (n > 0 ? sprintf("%.1f", ($5 - $1) / n) : "-"), (m > 0 ? sprintf("%.2f", 1000 * ($7 - $3) / m) : "-"),
           (d > 0 ? n / d : 0) }'
}

ROWS_PLAIN=$(sqlite3 "$(facts plain db)" "SELECT count(*) - 1 FROM events;")
ROWS_FWD=$(sqlite3 "$(facts forward db)" "SELECT count(*) - 1 FROM events;")
check_of() {  # check_of NAME ROWS
  local out="$WORK/$1.wrk"
  judge_rows "$2" "$(field "$out" stored)" "$(($(field "$out" sent) - $(field "$out" responses)))"
}
CHECK_PLAIN=$(check_of plain "$ROWS_PLAIN")
CHECK_FWD=$(check_of forward "$ROWS_FWD")

IFS='|' read -r CPU_PLAIN US_PLAIN C0_PLAIN C1_PLAIN < <(cpu_between "$WORK/plain.cpu0" "$WORK/plain.cpu1" "$(field "$WORK/plain.wrk" requests)")
IFS='|' read -r CPU_FWD US_FWD C0_FWD C1_FWD < <(cpu_between "$WORK/forward.cpu0" "$WORK/forward.cpu1" "$(field "$WORK/forward.wrk" requests)")
DRAIN_S=$(fw drain_s)
IFS='|' read -r CPU_DRAIN US_DRAIN C0_DRAIN C1_DRAIN < <(cpu_between "$WORK/forward.cpu1" "$WORK/forward.cpu2" "$(fw done_after)")
IFS='|' read -r BATCH_PLAIN MS_PLAIN CPS_PLAIN < <(commits plain store_wrk "$DURATION")
IFS='|' read -r BATCH_FWD MS_FWD CPS_FWD < <(commits forward store_wrk "$DURATION")
DRAIN_WALL=$(awk -v a="$(facts forward end_us)" -v b="$(facts forward drained_at_us)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
IFS='|' read -r BATCH_DRAIN MS_DRAIN CPS_DRAIN < <(commits forward store_drain "$DRAIN_WALL")

row() {  # row LABEL NAME ROWCHECK BATCH COMMIT_MS COMMITS/S US
  local out="$WORK/$2.wrk" errs
  errs=$(($(field "$out" err_connect) + $(field "$out" err_read) + $(field "$out" err_write) + $(field "$out" err_timeout)))
  printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(field "$out" rps)" \
    "$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "$(field "$out" p999_ms)" "$(field "$out" non2xx)" "$errs" \
    "$3" "$(facts "$2" rss)" "$4" "$5" "$6" "$7"
}

echo "Ingest (key cached; fresh daemon and database per run):"
echo "| run | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx | sock err | rows | peak RSS MiB | mean batch | mean commit ms | commits/s | cwhook CPU us/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
row "no destination" plain "$CHECK_PLAIN" "$BATCH_PLAIN" "$MS_PLAIN" "$CPS_PLAIN" "$US_PLAIN"
row "1 destination" forward "$CHECK_FWD" "$BATCH_FWD" "$MS_FWD" "$CPS_FWD" "$US_FWD"
RPS_PLAIN=$(field "$WORK/plain.wrk" rps)
RPS_FWD=$(field "$WORK/forward.wrk" rps)
awk -v a="$RPS_PLAIN" -v b="$RPS_FWD" 'BEGIN { printf "with / without forwarding: %.2fx (%.0f against %.0f req/s)\n", b / a, b, a }'
echo

RATE_DURING=$(awk -v n="$(fw done_during)" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }')
RATE_AFTER=$(awk -v n="$(fw done_after)" -v d="$DRAIN_S" 'BEGIN { if (d > 0) printf "%.0f", n / d; else printf "-" }')
echo "Forwarding (run b; lag = done_at_us - created_at_us of each done delivery of the wrk run, $(fw lag_n) rows):"
echo "| deliveries | done | done while wrk ran | forwarded/s while wrk ran | backlog at wrk's end | drain s | forwarded/s draining | lag p50 s | lag p99 s | lag max s | attempts | failed attempts | sink requests | distinct webhook-ids |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
echo "| $(fw deliveries) | $(fw done_rows) | $(fw done_during) | $RATE_DURING | $(fw backlog_at_end) | $DRAIN_S | $RATE_AFTER | $(fw lag_p50_s) | $(fw lag_p99_s) | $(fw lag_max_s) | $(fw attempts) | $(fw failed_attempts) | $(fw sink_requests) | $(fw sink_distinct) |"
echo "  drain s: from wrk's end to the last successful attempt's end (done_at_us); the outbox was seen empty $DRAIN_WALL s after wrk's end" \
  "(polling, after a 0.5 s pause); drained: $(facts forward drained)"
echo "  store during the drain: mean batch $BATCH_DRAIN, mean commit $MS_DRAIN ms, $CPS_DRAIN commits/s"
echo

verdict=OK
[ "$(fw deliveries)" = "$(fw verified)" ] && [ "$(fw done_rows)" = "$(fw verified)" ] && [ "$(fw not_one_done)" = 0 ] &&
  [ "$(fw orphans)" = 0 ] || verdict=MISMATCH
sink_verdict=OK
[ "$(fw sink_distinct)" = "$(fw done_rows)" ] || sink_verdict=MISMATCH
echo "Rows checked:"
echo "  no destination: rows=$ROWS_PLAIN stored-2xx=$(field "$WORK/plain.wrk" stored)" \
  "in-flight-at-stop=$(($(field "$WORK/plain.wrk" sent) - $(field "$WORK/plain.wrk" responses))) -> $CHECK_PLAIN"
echo "  1 destination: rows=$ROWS_FWD stored-2xx=$(field "$WORK/forward.wrk" stored)" \
  "in-flight-at-stop=$(($(field "$WORK/forward.wrk" sent) - $(field "$WORK/forward.wrk" responses))) -> $CHECK_FWD"
echo "  1 destination, outbox: events stored $(fw events) (verified $(fw verified), the warm-up included), deliveries $(fw deliveries)," \
  "done $(fw done_rows), not done $(fw undone); verified events without exactly one done delivery: $(fw not_one_done);" \
  "deliveries of no verified event: $(fw orphans) -> $verdict"
echo "  sink: $(fw sink_requests) requests over $(fw sink_connections) connections, $(fw sink_distinct) distinct webhook-ids" \
  "(done: $(fw done_rows); at least once allows repeats: $(($(fw sink_requests) - $(fw sink_distinct)))) -> $sink_verdict"
for n in plain forward; do
  [ "$(facts "$n" exit)" = 0 ] || echo "  $n: the daemon's exit status $(facts "$n" exit) after SIGTERM"
done
echo "  key fetches: $KEY_FETCHES (one per daemon start expected: 2)"
echo

echo "Where the CPU time went (share of one core; /proc, bench/cputime.py):"
echo "  no destination, wrk run:  $CPU_PLAIN; CPU $CWHOOK_CPU busy $C0_PLAIN%, CPU $CLIENT_CPU busy $C1_PLAIN%"
echo "  1 destination, wrk run:   $CPU_FWD; CPU $CWHOOK_CPU busy $C0_FWD%, CPU $CLIENT_CPU busy $C1_FWD%"
echo "  1 destination, the drain: $CPU_DRAIN; CPU $CWHOOK_CPU busy $C0_DRAIN%, CPU $CLIENT_CPU busy $C1_DRAIN%;" \
  "cwhook CPU us per forwarded delivery: $US_DRAIN"
echo
echo "database temp dir file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 }'); cwhook log lines (warn and above): $(wc -l <"$WORK/cwhook.log")"
if [ -s "$WORK/cwhook.log" ]; then
  echo "cwhook log lines (distinct, first 5):"
  sed 's/^[0-9TZ:.-]* //; s/ server=.*//' "$WORK/cwhook.log" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /'
fi
exit 0
