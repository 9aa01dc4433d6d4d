#!/usr/bin/env bash
# cwhook ingest benchmark: prints figures, judges nothing (always exits 0 once it has run).
#
#   bench/ingest.sh [all|hot|cold|profile]      (default: all)
#   bench/ingest.sh --backend postgres [hot]
#
# hot:  signed, distinct ~1.5 KB deliveries with wrk (keep-alive) against cwhook and, as the
#       ceiling, against nginx reading the same bodies; HTTP and HTTPS; several connection
#       counts; storage.synchronous full and normal. One fresh daemon and database per run.
# cold: 1,000 deliveries spread over 100 key URLs whose key server answers after 50 ms;
#       counts the key fetches (single flight: must be 100) and the latency, with the
#       per-host fetch budget (verify.key_fetch_rate) lifted to 1000/s for this run.
# profile: one hot run (PROFILE_PROTO http, PROFILE_CONNS 64, sync full) with `perf record`
#       sampling cwhook (cpu-clock, so it works without hardware counters); prints where the
#       CPU time goes, by thread, by library and by function.
# --backend postgres: the storage backends side by side in one run, each fresh, on a durable
#       throwaway PostgreSQL 15 cluster the script makes (initdb in a temp dir, fsync and
#       synchronous_commit on, a Unix socket only; stopped and removed on exit): SQLite (one
#       instance, synchronous full), PostgreSQL with one instance, the same behind nginx, and
#       two instances behind nginx round-robin (TARGETS). Per run: req/s, latency, the rows
#       in the database against the 2xx answers, the mean commit batch and commit time (the
#       daemons' /metrics), and where the CPU time went (/proc, bench/cputime.py).
#       (`--backend sqlite` is the default: the runs above.)
#
# Environment: DURATION (seconds per run, 10), CONNS ("1 64 256"), PROTOS ("http https"),
# SYNC_MODES ("full normal"), COLD_N (1000), COLD_URLS (100), COLD_CONCURRENCY (32),
# COLD_DELAY_MS (50), BENCH_TMPDIR (/tmp; the databases live there: use a real disk),
# KEEP=1 keeps the temp dir. With --backend postgres: PROTOS defaults to "http" (with https,
# nginx terminates TLS in the runs behind it), SYNC_MODES is not used (SQLite runs with
# synchronous full, the setting as durable as PostgreSQL's), and TARGETS
# ("sqlite:1 postgres:1 postgres:1:nginx postgres:2:nginx": backend:instances[:nginx]) says
# which runs to make for each protocol and connection count.
set -euo pipefail

usage() {
  echo "usage: $0 [all|hot|cold|profile]" >&2
  echo "       $0 --backend postgres [hot]" >&2
  exit 2
}
BACKEND=sqlite
MODE=
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) [ $# -ge 2 ] || usage; BACKEND=$2; shift 2 ;;
    --backend=*) BACKEND=${1#--backend=}; shift ;;
    all | hot | cold | profile) MODE=$1; shift ;;
    *) usage ;;
  esac
done
case "$BACKEND" in
  sqlite) MODE=${MODE:-all} ;;
  postgres) MODE=${MODE:-hot}; [ "$MODE" = hot ] || { echo "$0: --backend postgres runs the hot path only" >&2; exit 2; } ;;
  *) usage ;;
esac
PROFILE_PROTO=${PROFILE_PROTO:-http}
PROFILE_CONNS=${PROFILE_CONNS:-64}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 64 256"}
if [ "$BACKEND" = postgres ]; then PROTOS=${PROTOS:-http}; else PROTOS=${PROTOS:-"http https"}; fi
TARGETS=${TARGETS:-"sqlite:1 postgres:1 postgres:1:nginx postgres:2:nginx"}
SYNC_MODES=${SYNC_MODES:-"full normal"}
COLD_N=${COLD_N:-1000}
COLD_URLS=${COLD_URLS:-100}
COLD_CONCURRENCY=${COLD_CONCURRENCY:-32}
COLD_DELAY_MS=${COLD_DELAY_MS:-50}
CWHOOK_CPU=0   # the server under test (cwhook or nginx)
CLIENT_CPU=1   # wrk / the cold client

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BIN="$ROOT/build-bench/daemon/cwhook"
cd "$ROOT"

# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

# ------------------------------------------------------------------ dependencies, build

bench_prepare "$([ "$MODE" = profile ] && echo profile || echo bench)"

# ------------------------------------------------------------------ PostgreSQL (--backend postgres)

# A throwaway cluster as durable as a production one: fsync and synchronous_commit on (the
# server's defaults, written out), everything else PostgreSQL 15's defaults. It listens on a
# Unix socket in its own directory only (trust authentication is then open to its owner and
# root alone), runs on the server CPU with the daemons, and as nobody when this script runs as
# root (PostgreSQL refuses root), as tests/support/pg_cluster.cpp does it.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_PORT=
PG_PID=

without_pg_env() {  # runs a command without the caller's PG* variables (PGHOST, PGOPTIONS, ...)
  local unset_args=() v
  for v in $(compgen -e | grep '^PG' || true); do unset_args+=(-u "$v"); done
  env "${unset_args[@]}" "$@"
}

pg_as_owner() {  # runs a server program as the cluster's owner
  if [ "$(id -u)" -eq 0 ]; then
    without_pg_env setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    without_pg_env "$@"
  fi
}

pg_sql() {  # pg_sql DB SQL: psql -At, fields separated by a space
  without_pg_env "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t -F ' ' \
    -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$1" -c "$2"
}

pg_conninfo() {  # pg_conninfo DB
  echo "host='$PG_DIR' port=$PG_PORT user=postgres dbname=$1"
}

start_postgres() {
  PG_DIR=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/cwhook-bench-pg.XXXXXX")
  EXTRA_DIRS+=("$PG_DIR")
  PG_PORT=$(free_port)  # names the socket file only: no TCP listener
  [ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$PG_DIR"
  (cd "$PG_DIR" && pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-instructions) >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
  cat >>"$PG_DIR/data/postgresql.conf" <<EOF

# bench/ingest.sh: a Unix socket in the cluster's directory, no TCP; durable commits
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
fsync = on
synchronous_commit = on
# pg_stat_wal's sync times: where a commit's time goes (costs two clock reads per WAL write)
track_wal_io_timing = on
EOF
  (cd "$PG_DIR" && pg_as_owner taskset -c "$CWHOOK_CPU" "$PG_BIN/pg_ctl" start -w -s -D "$PG_DIR/data" \
    -l "$PG_DIR/postgres.log") >"$WORK/pg_ctl.log" 2>&1 ||
    { cat "$WORK/pg_ctl.log" "$PG_DIR/postgres.log" >&2; die "PostgreSQL did not start"; }
  PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
}

stop_postgres() {
  [ -n "$PG_DIR" ] && [ -e "$PG_DIR/data/postmaster.pid" ] || return 0
  (cd "$PG_DIR" && pg_as_owner "$PG_BIN/pg_ctl" stop -w -s -D "$PG_DIR/data" -m fast) >/dev/null 2>&1 ||
    (cd "$PG_DIR" && pg_as_owner "$PG_BIN/pg_ctl" stop -w -s -D "$PG_DIR/data" -m immediate) >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------ temp dir, cleanup

# lib.sh's cleanup stops the cluster too; start_postgres adds its directory to EXTRA_DIRS.
on_exit() { stop_postgres; }
bench_workdir

# start_nginx: sets NG_PID, NG_PORT, NG_TLS_PORT, NG_KIND
start_nginx() {
  NG_PORT=$(free_port)
  NG_TLS_PORT=$(free_port)
  local conf="$WORK/nginx.$NG_PORT.conf" load="" body
  mkdir -p "$WORK/nginx"
  if [ -e "$ECHO_MODULE" ]; then
    load="load_module $ECHO_MODULE;"
    NG_KIND="echo_read_request_body"
    body='echo_read_request_body; echo -n '"'"'{"status":"stored","id":0}'"'"';'
  else
    NG_KIND="return 200 (body read and discarded)"
    body='return 200 '"'"'{"status":"stored","id":0}'"'"';'
  fi
  cat >"$conf" <<EOF
$load
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.$NG_PORT.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NG_PORT;
    listen 127.0.0.1:$NG_TLS_PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    location / {
      client_max_body_size 1m;
      client_body_buffer_size 64k;
      client_body_in_single_buffer on;
      $body
    }
  }
}
EOF
  taskset -c "$CWHOOK_CPU" nginx -p "$WORK/nginx" -c "$conf" -e "$WORK/nginx/error.log" >>"$WORK/nginx/stdout.log" 2>&1 &
  NG_PID=$!
  PIDS+=("$NG_PID")
  python3 "$BENCH/client.py" ready "http://127.0.0.1:$NG_PORT/" --timeout 15 ||
    { tail -20 "$WORK/nginx/error.log" >&2; die "nginx did not start"; }
}

# ------------------------------------------------------------------ hot: wrk runs

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
CHECKS="$WORK/checks.txt"
: >"$CHECKS"

record() {  # target proto conns sync out rss rowcheck
  local out=$5 errs
  errs=$(($(field "$out" err_connect) + $(field "$out" err_read) + $(field "$out" err_write) + $(field "$out" err_timeout)))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" \
    "$(field "$out" rps)" "$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "$(field "$out" p999_ms)" \
    "$(field "$out" non2xx)" "$errs" "$6" "$7" >>"$RESULTS"
}

hot() {
  start_keyserver
  KEY_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
  KEY_URL="https://127.0.0.1:$KS_PORT/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=$KEY_ID"
  local proto conns sync url out rss rows redelivered rejections body_bytes s2xx sent resp inflight check rc starts=0
  for proto in $PROTOS; do
    for conns in $CONNS; do
      # ceiling: nginx reading the same bodies
      start_nginx
      log "nginx  $proto c=$conns (${DURATION}s)"
      url="http://127.0.0.1:$NG_PORT/callbacks"
      [ "$proto" = https ] && url="https://127.0.0.1:$NG_TLS_PORT/callbacks"
      out="$WORK/wrk.nginx.$proto.$conns.out"
      run_wrk "$url" "$conns" "$out"
      local worker
      worker=$(tr ' ' '\n' <"/proc/$NG_PID/task/$NG_PID/children" | head -n1)
      rss=$(vmhwm_mib "${worker:-$NG_PID}")
      stop_pid "$NG_PID" || true
      record nginx "$proto" "$conns" - "$out" "$rss" -

      for sync in $SYNC_MODES; do
        start_cwhook "$sync"
        starts=$((starts + 1))
        python3 "$BENCH/client.py" deliver "http://127.0.0.1:$CW_PORT/callbacks" \
          --key-url "$KEY_URL" --key "$SIGNING_KEY" >"$WORK/warm.out" 2>&1 ||
          { cat "$WORK/warm.out" >&2; tail -20 "$WORK/cwhook.log" >&2; die "warm-up delivery was not stored"; }
        log "cwhook $proto c=$conns sync=$sync (${DURATION}s)"
        url="http://127.0.0.1:$CW_PORT/callbacks"
        [ "$proto" = https ] && url="https://127.0.0.1:$CW_TLS_PORT/callbacks"
        out="$WORK/wrk.cwhook.$proto.$conns.$sync.out"
        run_wrk "$url" "$conns" "$out"
        sleep 0.5   # let requests still in flight when wrk stopped finish
        rss=$(vmhwm_mib "$CW_PID")
        rc=0
        stop_pid "$CW_PID" || rc=$?
        [ "$rc" -eq 0 ] || echo "cwhook $proto c=$conns sync=$sync: exit status $rc after SIGTERM" >>"$CHECKS"
        # rows: the warm-up delivery + every 2xx wrk saw + requests wrk abandoned at its stop
        # (sent but unanswered: at most one per connection) that the daemon still committed.
        read -r rows redelivered rejections body_bytes < <(sqlite3 -separator ' ' "$CW_DB" \
          "SELECT (SELECT count(*) FROM events) - 1, (SELECT count(*) FROM events WHERE deliveries > 1),
                  (SELECT count(*) FROM rejections),
                  (SELECT CAST(avg(length(body)) AS INTEGER) FROM events WHERE message_id LIKE '%-4000-8000-%');")
        s2xx=$(field "$out" stored)
        sent=$(field "$out" sent)
        resp=$(field "$out" responses)
        inflight=$((sent - resp))
        check=$(judge_rows "$rows" "$s2xx" "$inflight")
        echo "cwhook $proto c=$conns sync=$sync: rows=$rows stored-2xx=$s2xx in-flight-at-stop=$inflight" \
          "duplicate-answers=$(field "$out" dup) other-2xx=$(field "$out" other2xx)" \
          "redelivered-rows=$redelivered rejections=$rejections avg-body=${body_bytes}B -> $check" >>"$CHECKS"
        if grep -q '^BENCH_FIRST_BAD' "$out"; then
          echo "  first unexpected answer: $(sed -n 's/^BENCH_FIRST_BAD //p' "$out")" >>"$CHECKS"
        fi
        local line
        line=$(grep '^BENCH ' "$out")
        [[ "$line" == *"statuses=-"* ]] || echo "  statuses: $(field "$out" statuses)" >>"$CHECKS"
        record cwhook "$proto" "$conns" "$sync" "$out" "$rss" "$check"
        rm -f "$CW_DB" "$CW_DB-wal" "$CW_DB-shm"
      done
    done
  done
  echo "key fetches during the hot runs: $(key_fetches) (one per daemon start expected: $starts)" >>"$CHECKS"
  stop_pid "$KS_PID" || true
}

print_hot() {
  python3 - "$RESULTS" "$CHECKS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["target", "proto", "conns", "sync", "req/s", "p50 ms", "p99 ms", "p99.9 ms",
        "non-2xx", "sock err", "peak RSS MiB", "rows", "cwhook/nginx"]
nginx = {(r[1], r[2]): float(r[4]) for r in rows if r[0] == "nginx"}
out = []
for r in rows:
    ratio = "-"
    if r[0] == "cwhook" and nginx.get((r[1], r[2])):
        ratio = f"{float(r[4]) / nginx[(r[1], r[2])]:.2f}x"
    out.append([r[0], r[1], r[2], r[3], f"{float(r[4]):.0f}", r[5], r[6], r[7], r[8], r[9], r[10], r[11], ratio])
print("| " + " | ".join(cols) + " |")
print("|" + "|".join("---" for _ in cols) + "|")
for o in out:
    print("| " + " | ".join(o) + " |")
print()
print("Row checks (events rows vs 2xx \"stored\" answers seen by wrk):")
for l in open(sys.argv[2]):
    print("  " + l.rstrip())
print()
print("Targets (cwhook, HTTP, 64 connections):")
for r in rows:
    if r[0] != "cwhook" or r[1] != "http" or r[2] != "64":
        continue
    n = nginx.get(("http", "64"))
    ratio = float(r[4]) / n if n else float("nan")
    p99 = float(r[6]); rss = float(r[10]) if r[10] != "?" else float("nan")
    def v(ok): return "PASS" if ok else "MISS"
    print(f"  sync={r[3]:6}  req/s >= 0.5x nginx: {ratio:.2f}x {v(ratio >= 0.5)}   "
          f"p99 < 10 ms: {p99:.2f} ms {v(p99 < 10)}   peak RSS < 64 MiB: {rss:.1f} MiB {v(rss < 64)}")
EOF
}

# ------------------------------------------------------------------ backends: SQLite and PostgreSQL

# start_lb PORT...: nginx (one worker, on the server CPU) in front of the daemons' plain
# listeners, round-robin, with keep-alive connections to them as a deployment's proxy keeps
# them; HTTPS ends here. A POST that fails upstream is not retried on the other instance
# (nginx retries only idempotent requests): every answer wrk counts is one daemon's. Sets
# NG_PID, NG_PORT, NG_TLS_PORT.
start_lb() {
  NG_PORT=$(free_port)
  NG_TLS_PORT=$(free_port)
  local conf="$WORK/nginx.lb.$NG_PORT.conf" servers="" port
  for port in "$@"; do servers+="    server 127.0.0.1:$port;"$'\n'; done
  mkdir -p "$WORK/nginx"
  cat >"$conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.$NG_PORT.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream cwhook {
$servers    keepalive 512;
    # Idle upstream connections close before cwhook's server.idle_timeout (15 s) does.
    keepalive_timeout 10s;
  }
  server {
    listen 127.0.0.1:$NG_PORT;
    listen 127.0.0.1:$NG_TLS_PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    location / {
      client_max_body_size 1m;
      client_body_buffer_size 64k;
      proxy_pass http://cwhook;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
  taskset -c "$CWHOOK_CPU" nginx -p "$WORK/nginx" -c "$conf" -e "$WORK/nginx/error.log" >>"$WORK/nginx/stdout.log" 2>&1 &
  NG_PID=$!
  PIDS+=("$NG_PID")
  python3 "$BENCH/client.py" ready "http://127.0.0.1:$NG_PORT/readyz" --timeout 15 ||
    { tail -20 "$WORK/nginx/error.log" >&2; die "nginx (load balancer) did not start"; }
}

BACKEND_RESULTS="$WORK/backends.tsv"
BACKEND_CHECKS="$WORK/backends.checks.txt"
BACKEND_CPU="$WORK/backends.cpu.txt"
BACKEND_STARTS=0
BACKEND_RUN=0

# backend_run BACKEND INSTANCES VIA PROTO CONNS: one run on fresh daemons and a fresh database
# (VIA: "nginx" or "" for wrk straight to the one daemon)
backend_run() {
  local backend=$1 n=$2 via=$3 proto=$4 conns=$5
  local what="$backend x$n${via:+ via $via} $proto c=$conns" db="" i port rc
  local extra=() pids=() ports=() tls_ports=() admins=() dbs=()
  BACKEND_RUN=$((BACKEND_RUN + 1))
  if [ "$backend" = postgres ]; then
    db="bench_$BACKEND_RUN"
    without_pg_env "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres "$db" || die "createdb $db failed"
    extra=(CWHOOK_STORAGE_BACKEND=postgres "CWHOOK_STORAGE_URL=$(pg_conninfo "$db")")
  fi
  # wrk is one address standing in for Manage's many: its connections must not meet the
  # per-client cap (server.max_connections_per_client, 64). Behind nginx the daemons trust it
  # as a deployment trusts its proxy, which exempts it from that cap.
  if [ "$via" = nginx ]; then
    extra+=(CWHOOK_SERVER_TRUSTED_PROXIES=127.0.0.1/32)
  else
    extra+=(CWHOOK_SERVER_MAX_CONNECTIONS_PER_CLIENT=$((conns > 64 ? conns : 64)))
  fi
  # The instances start together: their schema migrations meet on PostgreSQL's advisory lock.
  for i in $(seq 1 "$n"); do
    launch_cwhook full "${extra[@]}"
    pids+=("$CW_PID") ports+=("$CW_PORT") tls_ports+=("$CW_TLS_PORT") admins+=("$CW_ADMIN_PORT") dbs+=("$CW_DB")
  done
  BACKEND_STARTS=$((BACKEND_STARTS + n))
  for port in "${ports[@]}"; do wait_ready "$port"; done
  # One warm-up delivery straight to each daemon: each one fetches and caches the key itself.
  for port in "${ports[@]}"; do
    python3 "$BENCH/client.py" deliver "http://127.0.0.1:$port/callbacks" \
      --key-url "$KEY_URL" --key "$SIGNING_KEY" >"$WORK/warm.out" 2>&1 ||
      { cat "$WORK/warm.out" >&2; tail -20 "$WORK/cwhook.log" >&2; die "warm-up delivery was not stored"; }
  done
  # Every PostgreSQL run starts right after a checkpoint, so each pays the same full-page
  # writes (the first change of a page after a checkpoint logs the whole page).
  if [ "$backend" = postgres ]; then
    pg_sql "$db" "CHECKPOINT" >/dev/null
    pg_sql "$db" "SELECT pg_stat_reset_shared('wal')" >/dev/null
  fi

  local url="http://127.0.0.1:${ports[0]}/callbacks" snap=()
  [ "$proto" = https ] && url="https://127.0.0.1:${tls_ports[0]}/callbacks"
  if [ "$via" = nginx ]; then
    start_lb "${ports[@]}"
    url="http://127.0.0.1:$NG_PORT/callbacks"
    [ "$proto" = https ] && url="https://127.0.0.1:$NG_TLS_PORT/callbacks"
    snap+=("nginx=$NG_PID+")
  fi
  for i in "${pids[@]}"; do snap+=("cwhook=$i"); done
  [ "$backend" != postgres ] || snap+=("postgres=$PG_PID+")

  local out="$WORK/wrk.$BACKEND_RUN.out"
  read -r b_sum0 b_n0 s_sum0 s_n0 < <(store_metrics "${admins[@]}")
  python3 "$BENCH/cputime.py" snap "$WORK/cpu.before" "${snap[@]}"
  log "$what (${DURATION}s)"
  run_wrk "$url" "$conns" "$out" "$WORK/wrk.time"
  python3 "$BENCH/cputime.py" snap "$WORK/cpu.after" "${snap[@]}"
  sleep 0.5   # let requests still in flight when wrk stopped finish
  read -r b_sum1 b_n1 s_sum1 s_n1 < <(store_metrics "${admins[@]}")
  [ "$via" != nginx ] || stop_pid "$NG_PID" || true
  for i in "${pids[@]}"; do
    rc=0
    stop_pid "$i" || rc=$?
    [ "$rc" -eq 0 ] || echo "$what: a daemon's exit status $rc after SIGTERM" >>"$BACKEND_CHECKS"
  done

  # rows: every 2xx wrk saw (+ requests abandoned at its stop), the warm-ups left out
  local rows redelivered rejections body_bytes wal=""
  if [ "$backend" = postgres ]; then
    read -r rows redelivered rejections body_bytes < <(pg_sql "$db" \
      "SELECT count(*) - $n, count(*) FILTER (WHERE deliveries > 1), (SELECT count(*) FROM rejections),
              coalesce(avg(length(body)) FILTER (WHERE message_id LIKE '%-4000-8000-%'), 0)::bigint FROM events")
    # The WAL since the checkpoint (the daemons have stopped: their backends reported it).
    wal=$(pg_sql "$db" "SELECT format('WAL %s B/row (full-page images %s%% of its records), %s syncs/s, mean sync %s ms',
                                      round(wal_bytes / greatest($rows, 1)), round(100.0 * wal_fpi / greatest(wal_records, 1)),
                                      round(wal_sync / $DURATION.0), round((wal_sync_time / greatest(wal_sync, 1))::numeric, 2))
                         FROM pg_stat_wal")
    without_pg_env "$PG_BIN/dropdb" --force -h "$PG_DIR" -p "$PG_PORT" -U postgres "$db"
  else
    read -r rows redelivered rejections body_bytes < <(sqlite3 -separator ' ' "${dbs[0]}" \
      "SELECT (SELECT count(*) FROM events) - $n, (SELECT count(*) FROM events WHERE deliveries > 1),
              (SELECT count(*) FROM rejections),
              (SELECT CAST(avg(length(body)) AS INTEGER) FROM events WHERE message_id LIKE '%-4000-8000-%');")
  fi
  for i in "${dbs[@]}"; do rm -f "$i" "$i-wal" "$i-shm"; done
  local s2xx sent resp inflight check
  s2xx=$(field "$out" stored)
  sent=$(field "$out" sent)
  resp=$(field "$out" responses)
  inflight=$((sent - resp))
  check=$(judge_rows "$rows" "$s2xx" "$inflight")
  echo "$what: rows=$rows stored-2xx=$s2xx in-flight-at-stop=$inflight duplicate-answers=$(field "$out" dup)" \
    "other-2xx=$(field "$out" other2xx) redelivered-rows=$redelivered rejections=$rejections avg-body=${body_bytes}B -> $check" \
    >>"$BACKEND_CHECKS"
  if grep -q '^BENCH_FIRST_BAD' "$out"; then
    echo "  first unexpected answer: $(sed -n 's/^BENCH_FIRST_BAD //p' "$out")" >>"$BACKEND_CHECKS"
  fi
  grep -q 'statuses=-' "$out" || echo "  statuses: $(field "$out" statuses)" >>"$BACKEND_CHECKS"

  # the store's own view: commits during the wrk run and the rows in each
  local batch commit_ms commits
  read -r batch commit_ms commits < <(awk -v d="$DURATION" \
    -v b0="$b_sum0" -v n0="$b_n0" -v b1="$b_sum1" -v n1="$b_n1" -v s0="$s_sum0" -v m0="$s_n0" -v s1="$s_sum1" -v m1="$s_n1" \
    'BEGIN { n = n1 - n0; m = m1 - m0;
             batch = "-"; if (n > 0) batch = sprintf("%.1f", (b1 - b0) / n);
             ms = "-"; if (m > 0) ms = sprintf("%.2f", 1000 * (s1 - s0) / m);
             printf "%s %s %.0f\n", batch, ms, n / d }')

  # where the CPU time went
  local cpu_lines server_us=0 cpu0 cpu1 line label pct us parts breakdown=""
  cpu_lines=$(python3 "$BENCH/cputime.py" diff "$WORK/cpu.before" "$WORK/cpu.after" \
    --requests "$(field "$out" requests)" --cpu "$CWHOOK_CPU" --cpu "$CLIENT_CPU")
  while IFS=$'\t' read -r line label pct us parts; do
    if [ "$line" = CPU ]; then
      [[ "$us" =~ ^[0-9]+$ ]] && server_us=$((server_us + us))
      breakdown+="${breakdown:+; }$label $pct% ($parts)"
    fi
  done <<<"$cpu_lines"
  cpu0=$(awk -F'\t' -v c="$CWHOOK_CPU" '$1 == "BUSY" && $2 == c { print $3 }' <<<"$cpu_lines")
  cpu1=$(awk -F'\t' -v c="$CLIENT_CPU" '$1 == "BUSY" && $2 == c { print $3 }' <<<"$cpu_lines")
  local wrk_pct
  wrk_pct=$(awk -v d="$DURATION" '{ printf "%.0f", 100 * ($1 + $2) / d }' "$WORK/wrk.time")
  echo "$what: CPU $CWHOOK_CPU busy $cpu0%, CPU $CLIENT_CPU busy $cpu1% (wrk $wrk_pct%); $breakdown${wal:+; $wal}" >>"$BACKEND_CPU"

  local errs
  errs=$(($(field "$out" err_connect) + $(field "$out" err_read) + $(field "$out" err_write) + $(field "$out" err_timeout)))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$backend" "$n" "${via:--}" "$proto" "$conns" "$(field "$out" rps)" "$(field "$out" p50_ms)" \
    "$(field "$out" p99_ms)" "$(field "$out" p999_ms)" "$(field "$out" non2xx)" "$errs" "$check" \
    "$batch" "$commit_ms" "$commits" "$server_us" "$cpu0" "$cpu1" >>"$BACKEND_RESULTS"
}

backends() {
  : >"$BACKEND_RESULTS"
  : >"$BACKEND_CHECKS"
  : >"$BACKEND_CPU"
  start_postgres
  start_keyserver
  KEY_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
  KEY_URL="https://127.0.0.1:$KS_PORT/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=$KEY_ID"
  local proto conns target backend n via
  for proto in $PROTOS; do
    for conns in $CONNS; do
      for target in $TARGETS; do
        IFS=: read -r backend n via <<<"$target"
        case "$backend:$via" in sqlite: | postgres: | postgres:nginx | sqlite:nginx) ;; *) die "TARGETS: bad entry '$target'" ;; esac
        [ "$backend" = postgres ] || [ "$n" = 1 ] || die "TARGETS: '$target': SQLite is one instance's file"
        backend_run "$backend" "$n" "$via" "$proto" "$conns"
      done
    done
  done
  echo "key fetches during the runs: $(key_fetches) (one per daemon start expected: $BACKEND_STARTS)" >>"$BACKEND_CHECKS"
  stop_pid "$KS_PID" || true
}

print_backends() {
  python3 - "$BACKEND_RESULTS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["backend", "instances", "proxy", "proto", "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "non-2xx",
        "sock err", "rows", "mean batch", "mean commit ms", "commits/s", "server CPU us/req", "CPU busy server/client"]
print("| " + " | ".join(cols) + " |")
print("|" + "|".join("---" for _ in cols) + "|")
for r in rows:
    print("| " + " | ".join(r[:5] + [f"{float(r[5]):.0f}"] + r[6:16] + [f"{r[16]}% / {r[17]}%"]) + " |")
EOF
  echo
  echo "Row checks (events rows vs 2xx \"stored\" answers seen by wrk, warm-up deliveries left out):"
  sed 's/^/  /' "$BACKEND_CHECKS"
  echo
  echo "Where the CPU time went during each wrk run (share of one core; /proc, bench/cputime.py):"
  sed 's/^/  /' "$BACKEND_CPU"
  echo
  cat <<EOF
Reading: every process of the server side (the daemons, PostgreSQL, nginx) shares CPU $CWHOOK_CPU,
and wrk has CPU $CLIENT_CPU, in every row alike. "server CPU us/req" is what those processes
spent per answered request; when they have CPU $CWHOOK_CPU to themselves (its busy share close
to the sum of theirs), req/s is about 1,000,000 / that figure. A second instance adds no core
here, so on such a machine the two-instance row shows what scaling out costs, not what it
gains. "mean commit ms" is the writer's whole transaction (on PostgreSQL: the INSERT, COMMIT
and the WAL flush it waits for; "mean sync" is that flush alone); while it runs the next batch
queues, so batches grow with the load and commits/s stays near 1000 / mean commit ms per writer.
EOF
}

# ------------------------------------------------------------------ cold: key fetches

cold() {
  start_keyserver --delay-ms "$COLD_DELAY_MS"
  # 100 cold key URLs at once on one host is what the per-host fetch budget exists to slow
  # down; this run measures single flight and latency, so the budget is lifted for it.
  KEY_FETCH_RATE=1000 start_cwhook full
  local base="https://127.0.0.1:$KS_PORT/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id="
  log "cold: $COLD_N deliveries over $COLD_URLS key URLs, key server delay ${COLD_DELAY_MS} ms, $COLD_CONCURRENCY connections"
  local out="$WORK/cold.out"
  run_waited taskset -c "$CLIENT_CPU" python3 "$BENCH/client.py" cold "http://127.0.0.1:$CW_PORT/callbacks" \
    --key-url-base "$base" --key "$SIGNING_KEY" --n "$COLD_N" --urls "$COLD_URLS" \
    --concurrency "$COLD_CONCURRENCY" >"$out" 2>&1 || { cat "$out" >&2; die "cold client failed"; }
  local fetches rss rows
  fetches=$(key_fetches)
  rss=$(vmhwm_mib "$CW_PID")
  stop_pid "$CW_PID" || true
  stop_pid "$KS_PID" || true
  rows=$(sqlite3 "$CW_DB" "SELECT count(*) FROM events;")
  local c; c=$(sed -n 's/^COLD //p' "$out")
  get() { sed -n 's/.*\b'"$1"'=\([^ ]*\).*/\1/p' <<<"$c"; }
  echo "Cold key cache: $COLD_N deliveries, $COLD_URLS distinct key URLs, key server answers after ${COLD_DELAY_MS} ms, $COLD_CONCURRENCY connections, sync=full"
  echo "| deliveries | stored | answers | client errors | key fetches | p50 ms | p99 ms | max ms | elapsed s | rows | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  echo "| $(get n) | $(get stored) | $(get answers) | $(get errors) | $fetches | $(get p50_ms) | $(get p99_ms) | $(get max_ms) | $(get elapsed_s) | $rows | $rss |"
  local v=MISS
  [ "$fetches" -eq "$COLD_URLS" ] && v=PASS
  echo "  key fetches == $COLD_URLS: $fetches $v"
  v=MISS
  [ "$rows" -eq "$(get stored)" ] && [ "$rows" -eq "$COLD_N" ] && v=PASS
  echo "  rows == stored answers == $COLD_N: $rows $v"
}

# ------------------------------------------------------------------ profile

profile() {
  start_keyserver
  KEY_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
  KEY_URL="https://127.0.0.1:$KS_PORT/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=$KEY_ID"
  start_cwhook full
  python3 "$BENCH/client.py" deliver "http://127.0.0.1:$CW_PORT/callbacks" \
    --key-url "$KEY_URL" --key "$SIGNING_KEY" >"$WORK/warm.out" 2>&1 || die "warm-up delivery was not stored"
  local url="http://127.0.0.1:$CW_PORT/callbacks" out="$WORK/wrk.profile.out"
  [ "$PROFILE_PROTO" = https ] && url="https://127.0.0.1:$CW_TLS_PORT/callbacks"
  log "profile: cwhook $PROFILE_PROTO c=$PROFILE_CONNS sync=full (${DURATION}s) under perf record"
  taskset -c "$CLIENT_CPU" perf record -q -e cpu-clock -F 2000 -g -p "$CW_PID" -o "$WORK/perf.data" \
    -- sleep "$DURATION" >"$WORK/perf.log" 2>&1 &
  local perf_pid=$!
  run_wrk "$url" "$PROFILE_CONNS" "$out"
  wait "$perf_pid" || true
  stop_pid "$CW_PID" || true
  stop_pid "$KS_PID" || true
  echo "profile: cwhook $PROFILE_PROTO, $PROFILE_CONNS connections, sync=full: $(field "$out" rps | cut -d. -f1) req/s under perf"
  echo
  local rep=(perf report -i "$WORK/perf.data" --stdio --no-children -g none)
  echo "CPU time by thread (cwhook-io: HTTP, parsing, verification; cwhook-store: SQLite writer):"
  "${rep[@]}" --sort comm 2>/dev/null | grep -E '^ +[0-9]' | head -8
  echo
  echo "CPU time by thread and library ([kernel.kallsyms] = system calls, scheduling, loopback TCP, file writes):"
  "${rep[@]}" --sort comm,dso 2>/dev/null | grep -E '^ +[0-9]' | head -14
  echo
  echo "Top functions (self time):"
  "${rep[@]}" --sort comm,dso,sym 2>/dev/null | grep -E '^ +[0-9]' | head -30 | cut -c1-160
}

# ------------------------------------------------------------------ main

echo "cwhook ingest benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: nproc=$(nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cwhook $("$BIN" --version 2>/dev/null | head -n1) Release; $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | sed 's/.*: //')"
echo "cwhook (server.threads default) and nginx (one worker) pinned to CPU $CWHOOK_CPU, client to CPU $CLIENT_CPU; ${DURATION}s per run; wrk -t1 keep-alive, timeout 5s"
echo
if [ "$MODE" = profile ]; then
  profile
  exit 0
fi
if [ "$BACKEND" = postgres ]; then
  echo "PostgreSQL $("$PG_BIN/postgres" --version | sed -n 's/^postgres (PostgreSQL) \([^ ]*\).*/\1/p'): throwaway cluster in ${BENCH_TMPDIR:-/tmp}, fsync on, synchronous_commit on, other settings the defaults; SQLite synchronous=full"
  echo
  backends
  echo "Storage backends (key cached; fresh daemons and database per run):"
  print_backends
  echo
  echo "database temp dir file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 }'); cwhook log lines (warn and above): $(wc -l <"$WORK/cwhook.log")"
  if [ -s "$WORK/cwhook.log" ]; then
    echo "cwhook log lines (distinct, first 5):"
    sed 's/^[0-9TZ:.-]* //; s/ server=.*//' "$WORK/cwhook.log" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /'
  fi
  exit 0
fi
if [ "$MODE" != cold ]; then
  hot
  echo "Hot path (key cached; nginx ceiling: $NG_KIND, one worker, same bodies and answer size):"
  print_hot
  echo
fi
if [ "$MODE" != hot ]; then
  cold
fi
echo
echo "database temp dir file system: $(df -T "$WORK" | awk 'NR == 2 { print $2 }'); cwhook log lines (warn and above): $(wc -l <"$WORK/cwhook.log")"
if [ -s "$WORK/cwhook.log" ]; then
  echo "first cwhook log lines:"
  head -n 5 "$WORK/cwhook.log" | sed 's/^/  /'
fi
exit 0
