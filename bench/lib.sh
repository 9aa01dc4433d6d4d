# shellcheck shell=bash
# Shared pieces of the benchmark drivers (ingest.sh, forward.sh); sourced, not run.
#
# The sourcing script sets ROOT, BENCH, BIN, CWHOOK_CPU, CLIENT_CPU and DURATION first, then:
#   bench_prepare GROUP   missing packages (tools/install-deps.sh GROUP) and the Release build
#   bench_workdir         the temp dir, cleanup on exit, the certificate, SIGNING_KEY, ADMIN_TOKEN
# Processes it starts go into PIDS, so that cleanup stops them. A script that owns more than
# processes and the temp dir redefines on_exit (run by cleanup before the temp dir goes) and
# adds directories of its own to EXTRA_DIRS.

log() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# ------------------------------------------------------------------ dependencies, build

ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so

bench_prepare() {  # bench_prepare GROUP (bench or profile)
  PATH="$PATH:/usr/sbin:/sbin"
  "$ROOT/tools/install-deps.sh" "$1" >&2
  # Optional: nginx's echo module lets the ceiling buffer the body (echo_read_request_body).
  if [ ! -e "$ECHO_MODULE" ] && command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnginx-mod-http-echo >/dev/null 2>&1 || true
  fi

  log "building Release cwhook in build-bench/"
  local build_log
  build_log=$(mktemp)
  if ! { cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DCWHOOK_BUILD_TESTS=OFF &&
         cmake --build build-bench --target cwhook; } >"$build_log" 2>&1; then
    tail -40 "$build_log" >&2
    rm -f "$build_log"
    die "build failed"
  fi
  rm -f "$build_log"
  [ -x "$BIN" ] || die "no binary at $BIN"
}

# ------------------------------------------------------------------ temp dir, cleanup

WORK=
PIDS=()
EXTRA_DIRS=()

on_exit() { :; }

stop_pid() {  # stop_pid PID: SIGTERM, bounded wait, then SIGKILL; returns the exit status
  local pid=$1 i rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && stop_pid "$pid" || true
  done
  on_exit
  [ -n "$WORK" ] || return 0
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK ${EXTRA_DIRS[*]}"; else rm -rf "$WORK" "${EXTRA_DIRS[@]}"; fi
}

# Clients run in the background and are waited for, so that Ctrl-C stops the script at once
# (bash would otherwise ignore SIGINT after a foreground child that handles it, as wrk does).
run_waited() {
  "$@" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_workdir: the temp dir (BENCH_TMPDIR, default /tmp), removed on exit unless KEEP=1; a
# self-signed certificate for 127.0.0.1 in it; SIGNING_KEY (the key server's) and ADMIN_TOKEN
# (every daemon's admin listener)
bench_workdir() {
  WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/cwhook-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  log "self-signed certificate, temp dir $WORK ($(df -T "$WORK" | awk 'NR == 2 { print $2 }') file system)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || die "openssl req failed"

  SIGNING_KEY=$(openssl rand -hex 16)
  # The admin listener of every daemon (its /metrics) takes this token, on a port of its own.
  ADMIN_TOKEN=$(openssl rand -hex 24)
}

# ------------------------------------------------------------------ key server, daemons, wrk

# start_keyserver [--delay-ms N]: sets KS_PID, KS_PORT
# shellcheck disable=SC2034  # i only counts the tries
start_keyserver() {
  local out="$WORK/keyserver.$RANDOM.out" i
  python3 "$BENCH/keyserver.py" --cert "$WORK/cert.pem" --key-file "$WORK/key.pem" --key "$SIGNING_KEY" \
    "$@" >"$out" 2>&1 &
  KS_PID=$!
  PIDS+=("$KS_PID")
  KS_PORT=""
  for i in $(seq 1 100); do
    KS_PORT=$(head -n1 "$out" 2>/dev/null | tr -dc 0-9)
    [ -n "$KS_PORT" ] && return 0
    kill -0 "$KS_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$out" >&2
  die "key server did not start"
}

key_fetches() {
  python3 - "$KS_PORT" "$WORK/cert.pem" <<'EOF'
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
with urllib.request.urlopen(f"https://127.0.0.1:{sys.argv[1]}/__count", context=ctx, timeout=5) as r:
    print(json.load(r)["fetches"])
EOF
}

# launch_cwhook SYNC [VAR=VALUE...]: starts a daemon without waiting for it to be ready; sets
# CW_PID, CW_PORT, CW_TLS_PORT, CW_ADMIN_PORT, CW_DB (fresh database). The VAR=VALUE pairs
# are added to its environment last, so they win (the PostgreSQL backend's settings, a
# CWHOOK_CONFIG file).
launch_cwhook() {
  local sync=$1
  shift
  CW_PORT=$(free_port)
  CW_TLS_PORT=$(free_port)
  CW_ADMIN_PORT=$(free_port)
  CW_DB="$WORK/bench.$sync.$CW_PORT.db"
  local unset_args=() v
  for v in $(compgen -e | grep '^CWHOOK_' || true); do unset_args+=(-u "$v"); done
  env "${unset_args[@]}" \
    CWHOOK_SERVER_LISTEN="127.0.0.1:$CW_PORT" \
    CWHOOK_SERVER_TLS_LISTEN="127.0.0.1:$CW_TLS_PORT" \
    CWHOOK_SERVER_TLS_CERT="$WORK/cert.pem" \
    CWHOOK_SERVER_TLS_KEY="$WORK/key.pem" \
    CWHOOK_ADMIN_LISTEN="127.0.0.1:$CW_ADMIN_PORT" \
    CWHOOK_ADMIN_TOKEN="$ADMIN_TOKEN" \
    CWHOOK_STORAGE_PATH="$CW_DB" \
    CWHOOK_STORAGE_SYNCHRONOUS="$sync" \
    CWHOOK_VERIFY_ALLOWED_KEY_HOSTS="127.0.0.1:$KS_PORT" \
    CWHOOK_VERIFY_COMPANIES=Cobalt \
    CWHOOK_VERIFY_KEY_FETCH_RATE="${KEY_FETCH_RATE:-5}" \
    CWHOOK_VERIFY_CA_FILE="$WORK/cert.pem" \
    CWHOOK_LOG_LEVEL=warn \
    "$@" \
    taskset -c "$CWHOOK_CPU" "$BIN" serve >>"$WORK/cwhook.log" 2>&1 &
  CW_PID=$!
  PIDS+=("$CW_PID")
}

wait_ready() {  # wait_ready PORT
  python3 "$BENCH/client.py" ready "http://127.0.0.1:$1/readyz" --timeout 30 ||
    { tail -20 "$WORK/cwhook.log" >&2; die "cwhook did not become ready"; }
}

# start_cwhook SYNC: launch_cwhook, then waits until it is ready
start_cwhook() {
  launch_cwhook "$@"
  wait_ready "$CW_PORT"
}

vmhwm_mib() {  # peak RSS of a pid, MiB
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# run_wrk URL CONNS OUTFILE [TIMEFILE]: one wrk run; the BENCH line lands in OUTFILE, and with
# TIMEFILE wrk's own CPU seconds ("user system", /usr/bin/time) in that file
run_wrk() {
  local url=$1 conns=$2 out=$3 timing=()
  [ -z "${4:-}" ] || timing=(/usr/bin/time -o "$4" -f '%U %S')
  run_waited taskset -c "$CLIENT_CPU" "${timing[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 5s \
    -s "$BENCH/ingest.lua" "$url" -- "$KEY_URL" "$SIGNING_KEY.$KEY_ID" "$(openssl rand -hex 4)" >"$out" 2>&1 ||
    true
  grep -q '^BENCH ' "$out" || { cat "$out" >&2; die "wrk printed no result"; }
}

field() {  # field FILE NAME: value of NAME=... on the BENCH line
  sed -n 's/^BENCH .*\b'"$2"'=\([^ ]*\).*/\1/p' "$1" | head -n1
}

# judge_rows ROWS STORED_2XX IN_FLIGHT: OK, OK+N (requests wrk abandoned at its stop that were
# committed all the same: at most one per connection) or MISMATCH
judge_rows() {
  if [ "$1" -eq "$2" ]; then
    echo OK
  elif [ "$1" -gt "$2" ] && [ "$1" -le $(($2 + $3)) ]; then
    echo "OK+$(($1 - $2))"
  else
    echo MISMATCH
  fi
}

# store_metrics ADMIN_PORT...: "batch_sum batch_count seconds_sum seconds_count" of the commit
# histograms, added up over the daemons
store_metrics() {
  local port
  for port in "$@"; do
    python3 "$BENCH/client.py" metrics "http://127.0.0.1:$port/metrics" --token "$ADMIN_TOKEN" \
      cwhook_store_commit_batch_size_sum cwhook_store_commit_batch_size_count \
      cwhook_store_commit_duration_seconds_sum cwhook_store_commit_duration_seconds_count ||
      die "no /metrics from the admin listener on port $port"
  done | awk '{ v[$1] += $2 }
    END { printf "%.6f %d %.6f %d\n", v["cwhook_store_commit_batch_size_sum"], v["cwhook_store_commit_batch_size_count"],
                 v["cwhook_store_commit_duration_seconds_sum"], v["cwhook_store_commit_duration_seconds_count"] }'
}
