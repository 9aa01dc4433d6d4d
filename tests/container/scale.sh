# shellcheck shell=bash disable=SC2154  # sourced by run.sh, which sets $work, $project, ...
# docker/compose.scale.yaml on the real engine: Caddy in front of two cwhook replicas that share
# one PostgreSQL (docker/postgres). Sourced by tests/container/run.sh --scale once the images,
# the test CA and the key server are ready; it uses run.sh's variables and helpers (step, fail,
# cw, post, free_port, $work, $project, $compose, $image, $proxy_image).
#
# Checks: the password is in no container's environment, command line or log; both replicas
# become healthy together (their migrations meet on the advisory lock); Caddy spreads signed
# deliveries over both; during one burst of sequential deliveries replica a crashes (SIGKILL)
# and is restarted by its restart policy, then replica b is stopped (a redeploy) and started
# again: every answer is a 200 or Caddy's 429 (never a 5xx, which Manage does not retry), the
# 429s are few and acknowledged when sent again as Manage retries them, and every delivery is
# then stored exactly once and byte-exact; the restarted replica takes deliveries again; with
# both replicas stopped Caddy answers 429 + Retry-After.

pg_image=localhost/cwhook-postgres:test
step "postgres image: docker/postgres (Debian's postgresql-15)"
podman build -t "$pg_image" docker/postgres >"$work/build-postgres.log" 2>&1 \
  || { tail -20 "$work/build-postgres.log"; fail "postgres image build"; }
step "image $pg_image: $(podman image inspect -f '{{.Size}}' "$pg_image" | numfmt --to=si)B"

# The secrets, as the compose file's header says to make them.
install -d -m 0700 "$work/secrets"
pg_password=$(openssl rand -hex 24)
printf '%s\n' "$pg_password" >"$work/secrets/pg_password"
printf 'postgresql://cwhook:%s@postgres:5432/cwhook\n' "$pg_password" >"$work/secrets/pg_url"
chmod 0644 "$work/secrets/pg_password" "$work/secrets/pg_url"
export CWHOOK_SECRETS=$work/secrets

remove_project_leftovers
# podman-compose 1.0.3 ignores `ipam`: the proxy network is made with the file's subnet first.
podman network create --subnet "$subnet" --ip-range "$ip_range" "${project}_proxy" >/dev/null
replica_override() { # the test's settings of one replica
  cat <<EOF
  $1:
    image: $image
    environment:
      CWHOOK_VERIFY_COMPANIES: cwhook_emulator
      CWHOOK_VERIFY_ALLOWED_KEY_HOSTS: manage.test:$emulator_port
      CWHOOK_VERIFY_CA_FILE: /run/test-ca/ca.pem
    volumes:
      - $work/ca.pem:/run/test-ca/ca.pem:ro
    extra_hosts: ["manage.test:$gateway"]
EOF
}
{
  echo "services:"
  replica_override cwhook-a
  replica_override cwhook-b
  cat <<EOF
  postgres:
    image: $pg_image
  caddy:
    image: $proxy_image
    volumes:
      - $work/proxy-certs:/certs:ro
      - $work/site.d:/etc/caddy/site.d:ro
EOF
} >"$work/compose.test.yaml"
export CWHOOK_HTTPS_PUBLISH=127.0.0.1:$https_port CWHOOK_HTTP_PUBLISH=127.0.0.1:$http_port
a=${project}_cwhook-a_1
b=${project}_cwhook-b_1
pg=${project}_postgres_1

wait_healthy_named() { # container timeout_s: runs its HEALTHCHECK until it passes
  local t0=$SECONDS
  until podman healthcheck run "$1" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$2" ] || fail "$1: HEALTHCHECK did not pass within $2s"
    sleep 0.5
  done
}

# podman-compose ignores `condition: service_healthy`: the database first, then the rest (what
# Docker Compose does by itself).
t0=$SECONDS
"${compose[@]}" up -d postgres >"$work/compose-up-postgres.log" 2>&1 \
  || { cat "$work/compose-up-postgres.log"; fail "podman-compose up postgres"; }
wait_healthy_named "$pg" 90
step "postgres healthy after $((SECONDS - t0))s (first start: initdb, role and database cwhook)"
t0=$SECONDS
"${compose[@]}" up -d >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log"; fail "podman-compose up"; }
wait_healthy_named "$a" 60
wait_healthy_named "$b" 60
for c in "$a" "$b"; do
  [ "$(podman inspect -f '{{.RestartCount}}' "$c")" = 0 ] || fail "$c restarted while starting"
done
wait_proxy
step "both replicas healthy after $((SECONDS - t0))s, started together, no restart (proxy on 127.0.0.1:$https_port)"

# The password: only in the two secret files.
for c in "$a" "$b" "$pg" "${project}_caddy_1"; do
  podman inspect "$c" | grep -q "$pg_password" && fail "$c: the database password is in its configuration"
  podman logs "$c" 2>&1 | grep -q "$pg_password" && fail "$c: the database password is in its log"
done
podman exec "$a" cwhook check-config >"$work/check-config.txt" 2>&1 || { cat "$work/check-config.txt"; fail "check-config in $a"; }
grep -q "$pg_password" "$work/check-config.txt" && fail "check-config prints the database password"
step "the password is in no container's environment, command line or log, nor in check-config's output"

# ---------------------------------------------------------------- deliveries through Caddy
cw subscriptions create --type ticket --level owner --url "https://localhost:$https_port/callbacks?recordId=" >/dev/null \
  || fail "subscriptions create"
for id in 5001 5002; do
  cw emulate trigger --emulator "$emulator_local" --ca-file "$work/ca.pem" --type ticket --action updated --id $id \
    >>"$work/trigger.log" 2>&1 || { cat "$work/trigger.log"; fail "emulated Manage delivery $id"; }
done
export_events() { # the stored events, read from PostgreSQL by a replica's own CLI
  podman exec "$1" cwhook events export --format jsonl >"$2"
}
export_events "$b" "$work/export1.jsonl"
[ "$(wc -l <"$work/export1.jsonl")" -eq 2 ] || fail "$(wc -l <"$work/export1.jsonl") events after 2 emulated deliveries"
key_url=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["key_url"])' "$work/export1.jsonl")
signing_key=$(curl -fsS --cacert "$work/ca.pem" --resolve "manage.test:$emulator_port:127.0.0.1" "$key_url" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["signing_key"])')
python3 tests/container/payloads.py make "$work/export1.jsonl" "$signing_key" "$work/bodies" 8000 20
python3 tests/container/payloads.py make "$work/export1.jsonl" "$signing_key" "$work/bodies" 9000 4000
python3 tests/container/payloads.py make "$work/export1.jsonl" "$signing_key" "$work/bodies" 13600 20

: >"$work/pending.ids"
ack() { # ID: posts it through Caddy; 200, or 202 (stored, key not fetched yet: noted in pending.ids)
  local code
  code=$(post "$url" "$1")
  case "$code" in
    200) ;;
    202) echo "$1" >>"$work/pending.ids" ;;
    *) echo "delivery $1: $code" >&2; return 1 ;;
  esac
}
served() { # requests to /callbacks in a replica's log (all its runs)
  podman logs "$1" 2>&1 | grep -c '"path":"/callbacks"' || true
}
url=https://localhost:$https_port/callbacks
: >"$work/spread.ids"
for id in $(seq 8000 8019); do
  [ "$(post "$url" "$id")" = 200 ] || fail "signed callback $id through Caddy (before any replica went away)"
  echo "$id" >>"$work/spread.ids"
done
served_a=$(served "$a")
served_b=$(served "$b")
[ "$served_a" -gt 0 ] && [ "$served_b" -gt 0 ] || fail "Caddy did not spread deliveries: a served $served_a, b $served_b"
step "2 emulated + 20 signed deliveries through Caddy: all 200, replica a served $served_a, b $served_b (round-robin)"

# ---------------------------------------------------------------- a crash and a redeploy mid-burst
burst() { # sequential signed deliveries through Caddy until told to stop: "id status seconds" per line
  local id out
  for id in $(seq 9000 12999); do
    [ ! -e "$work/burst.stop" ] || return 0
    out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 20 --cacert "$work/ca.pem" \
      -H 'Content-Type: application/json' -H "x-content-signature: $(cat "$work/bodies/$id.sig")" \
      --data-binary "@$work/bodies/$id.json" "$url?recordId=$id" 2>>"$work/burst.err" || true)
    echo "$id ${out:-000 0}" >>"$work/burst.log"
  done
}
sent() { wc -l <"$work/burst.log"; }
wait_sent() { # until the burst has sent N deliveries
  until [ "$(sent)" -ge "$1" ]; do
    kill -0 "$burst_pid" 2>/dev/null || fail "the burst ended before delivery $1"
    sleep 0.05
  done
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
secs() { echo "$(($1 / 1000)).$(($1 % 1000 / 100))s"; }
: >"$work/burst.log"
burst &
burst_pid=$!

# A crash: SIGKILL to replica a's daemon (not `podman kill`, which counts as stopped by the
# operator). Its restart policy (unless-stopped) starts it again.
wait_sent 100
kill_at=$(sent)
t_kill=$(date +%s%N)
kill -KILL "$(podman inspect -f '{{.State.Pid}}' "$a")"
until [ "$(podman inspect -f '{{.RestartCount}}' "$a")" -ge 1 ] && podman healthcheck run "$a" >/dev/null 2>&1; do
  [ "$(ms_since "$t_kill")" -lt 60000 ] || fail "$a not back and healthy within 60s of the kill"
  sleep 0.1
done
a_back=$(ms_since "$t_kill")

# A redeploy: replica b stopped as the engine stops it (SIGTERM, drain), out for 5 s while the
# burst goes on through a alone, then started again.
wait_sent 300
stop_at=$(sent)
t_stop=$(date +%s%N)
podman stop -t 30 "$b" >/dev/null 2>>"$work/podman.log"
b_stopped=$(ms_since "$t_stop")
[ "$(podman inspect -f '{{.State.ExitCode}}' "$b")" = 0 ] || fail "$b: exit status $(podman inspect -f '{{.State.ExitCode}}' "$b") after SIGTERM"
sleep 5
during_stop=$(( $(sent) - stop_at ))
podman start "$b" >/dev/null 2>>"$work/podman.log"
wait_healthy_named "$b" 60
b_back=$(ms_since "$t_stop")
# A hundred more with both replicas back, then the burst stops. Had it run out of deliveries
# before that, the steps above would not all have been under load.
wait_sent $(($(sent) + 100))
touch "$work/burst.stop"
wait "$burst_pid"

read -r total ok pending deferred max_s < <(awk '{ n++; if ($2 == 200) ok++; else if ($2 == 202) p++; else bad++;
  if ($3 > max) max = $3 } END { printf "%d %d %d %d %.2f\n", n, ok, p, bad, max }' "$work/burst.log")
# Every answer is a 2xx (202: stored, the signing key could not be fetched yet), or Caddy's 429
# for a request that a replica going away did not take (the one on replica a when it died;
# those sent to a replica after it went and before Caddy's next health check, whose retry Caddy
# 2.6.2 cannot make: docker/Caddyfile.scale). Never a 5xx, which Manage would not retry.
bad=$(awk '$2 != 200 && $2 != 202 && $2 != 429' "$work/burst.log" | head -n 3)
[ -z "$bad" ] || fail "answers other than 200, 202 and 429 during the burst: $bad"
[ "$deferred" -le 30 ] || fail "$deferred deliveries of the burst answered 429: more than two health-check intervals' worth"
awk '$2 == 202 { print $1 }' "$work/burst.log" >"$work/pending.ids"
# Manage's retry of each 429 (after its Retry-After): acknowledged now, so every delivery of the
# burst is stored.
retried=$(awk '$2 == 429 { print $1 }' "$work/burst.log")
for id in $retried; do
  ack "$id" || fail "delivery $id, answered 429 during the burst, refused again on its retry"
done
awk '{ print $1 }' "$work/burst.log" | grep -vxF -f "$work/pending.ids" >"$work/burst-acked.ids" || true
step "burst of $total sequential deliveries through Caddy: $ok answered 200, $pending 202, $deferred 429 (no 5xx)," \
     "slowest ${max_s}s; those $deferred retried as Manage does: 2xx"
step "  SIGKILL to replica a at delivery $kill_at: restarted by its policy and healthy after $(secs "$a_back");" \
     "429s around it: $(awk -v s="$kill_at" -v e="$stop_at" '$2 == 429 && $1 - 9000 >= s - 5 && $1 - 9000 < e' "$work/burst.log" | wc -l)"
step "  replica b stopped at delivery $stop_at (SIGTERM, exit 0 after $(secs "$b_stopped")): $during_stop deliveries" \
     "through a alone in 5s; b started and healthy $(secs "$b_back") after its stop began;" \
     "429s around it: $(awk -v s="$stop_at" '$2 == 429 && $1 - 9000 >= s - 5' "$work/burst.log" | wc -l)"

export_events "$b" "$work/export2.jsonl"
python3 tests/container/payloads.py check "$work/export2.jsonl" "$work/bodies" "$work/spread.ids" "$work/burst-acked.ids" \
  >"$work/check-burst.txt" || { grep -v ' 172\.' "$work/check-burst.txt" | head; fail "acknowledged deliveries missing or altered"; }
python3 tests/container/payloads.py check --pending-ok "$work/export2.jsonl" "$work/bodies" "$work/pending.ids" \
  >"$work/check-pending.txt" || { grep -v ' 172\.' "$work/check-pending.txt" | head; fail "deliveries answered 202 missing or altered"; }
# cwhook believed Caddy's X-Forwarded-For (server.trusted_proxies is the file's container range):
# the stored client is the host as Caddy saw it, not Caddy.
clients=$(awk '{ print $2 }' "$work/check-burst.txt" | sort -u | tr '\n' ' ')
[ "$clients" = "$gateway " ] || fail "stored clients through Caddy: $clients(expected $gateway)"
dups=$(python3 -c '
import collections, json, sys
ids = collections.Counter(json.loads(l)["message_id"] for l in open(sys.argv[1]))
print(sum(1 for n in ids.values() if n > 1))' "$work/export2.jsonl")
[ "$dups" -eq 0 ] || fail "$dups MessageIds stored more than once"
step "every delivery is in PostgreSQL once and byte-exact ($(wc -l <"$work/export2.jsonl") events, read by replica b;" \
     "$(wc -l <"$work/pending.ids") of them answered 202 and pending), client $gateway (X-Forwarded-For believed)"

# The restarted replica takes deliveries again.
served_a=$(served "$a")
: >"$work/after.ids"
for id in $(seq 13600 13619); do
  ack "$id" || fail "signed callback $id after the restart"
  echo "$id" >>"$work/after.ids"
done
[ "$(served "$a")" -gt "$served_a" ] || fail "replica a took no delivery after its restart"
step "replica a, restarted, served $(($(served "$a") - served_a)) of 20 more deliveries"

# ---------------------------------------------------------------- no replica at all
t0=$(date +%s%N)
podman stop -t 30 "$a" >/dev/null 2>>"$work/podman.log"
a_stop=$(ms_since "$t0")
t0=$(date +%s%N)
podman stop -t 30 "$b" >/dev/null 2>>"$work/podman.log"
b_stop=$(ms_since "$t0")
for c in "$a" "$b"; do
  [ "$(podman inspect -f '{{.State.ExitCode}}' "$c")" = 0 ] || fail "$c: exit status $(podman inspect -f '{{.State.ExitCode}}' "$c") after SIGTERM"
done
t0=$(date +%s%N)
out=$(curl -sS -D - -o "$work/no-replica.body" --max-time 20 --cacert "$work/ca.pem" \
  -H 'Content-Type: application/json' -H "x-content-signature: $(cat "$work/bodies/9000.sig")" \
  --data-binary "@$work/bodies/9000.json" "$url?recordId=9000" | tr -d '\r')
grep -q '^HTTP/[0-9.]* 429' <<<"$out" || fail "with both replicas stopped Caddy answered: $(head -n1 <<<"$out")"
grep -qi '^retry-after: ' <<<"$out" || fail "Caddy's 429 has no Retry-After"
answer_ms=$(ms_since "$t0")
t0=$(date +%s%N)
podman start "$a" "$b" >/dev/null 2>>"$work/podman.log"
wait_healthy_named "$a" 60
wait_healthy_named "$b" 60
start_ms=$(ms_since "$t0")
wait_proxy
export_events "$a" "$work/export3.jsonl"
python3 tests/container/payloads.py check --pending-ok "$work/export3.jsonl" "$work/bodies" "$work/spread.ids" \
  "$work/burst-acked.ids" "$work/pending.ids" "$work/after.ids" >/dev/null || fail "events lost across the replicas' stop and start"
step "both replicas stopped (SIGTERM, exit 0 after $(secs "$a_stop") and $(secs "$b_stop")): Caddy answers 429 with Retry-After" \
     "after $(secs "$answer_ms"); started again, healthy after $(secs "$start_ms"), all $(wc -l <"$work/export3.jsonl") events there"
