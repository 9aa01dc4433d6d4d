#!/usr/bin/env bash
# `make test-container`: docker/Dockerfile and docker/compose.yaml on a real engine (rootful
# podman with runc), behind a real TLS-terminating proxy (Caddy from Debian's package).
#
#   tests/container/run.sh [BUILD_DIR] [--cold] [--from-source | --image NAME] [--scale]
#
# 1. Base images debian:12 and debian:12-slim from debootstrap, cached as tarballs in
#    $CWHOOK_CONTAINER_CACHE (default ~/.cache/cwhook-container); --cold rebuilds them.
# 2. The image: the Dockerfile's runtime stage around BUILD_DIR's cwhook (target
#    runtime-from-binary: the test does not compile cwhook a second time), built from the
#    source tree, which has a build/ folder (.dockerignore keeps it out; checked).
#    --from-source builds the default target instead: the image users build, compiling cwhook
#    in the build stage (about 25 minutes on two cores when its layers are not cached);
#    --image NAME tests an image built before (e.g. `podman build -f docker/Dockerfile .`).
# 3. docker/compose.yaml under podman-compose plus a test override (test CA, key host), with a
#    `cwhook emulate` on the host as the Manage key server over verified HTTPS.
# 4. Checks: uid 10001, read-only root, named volume, HEALTHCHECK passes; signed callbacks from
#    the host through Caddy are stored byte-exact and verified; X-Forwarded-For is believed
#    from the proxy only; SIGTERM mid-burst exits 0 within the stop timeout and loses nothing
#    acknowledged; a new container on the same volume still has every event.
# --scale: steps 1-3 alike, then docker/compose.scale.yaml instead (tests/container/scale.sh):
#    Caddy, two replicas, PostgreSQL; one replica killed mid-burst (`make test-container-scale`).
# Needs root (rootful podman) and `tools/install-deps.sh container`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build_dir=build
cold=0
from_source=0
scale=0
given_image=
while [ $# -gt 0 ]; do
  a=$1; shift
  case "$a" in
    --image) given_image=${1:?--image NAME}; shift ;;
    --cold) cold=1 ;;
    --from-source) from_source=1 ;;
    --scale) scale=1 ;;
    -*) echo "usage: $0 [BUILD_DIR] [--cold] [--from-source | --image NAME] [--scale]" >&2; exit 2 ;;
    *) build_dir=$a ;;
  esac
done
case "$build_dir" in /*) ;; *) build_dir=$root/$build_dir ;; esac
binary=$build_dir/daemon/cwhook
[ -x "$binary" ] || { echo "test-container: no $binary (make daemon first)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "test-container: needs root (rootful podman)" >&2; exit 1; }

start=$SECONDS
step() { printf '== [%4ds] %s\n' $((SECONDS - start)) "$*"; }
fail() { printf '!! FAILED: %s\n' "$*" >&2; exit 1; }

cache=${CWHOOK_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cwhook-container}
image=localhost/cwhook:test
proxy_image=localhost/cwhook-caddy:test
work=$(mktemp -d /tmp/cwhook-container.XXXXXX)
if [ $scale -eq 0 ]; then
  project="cwhook-test"
  subnet=172.30.0.0/24
  ip_range=172.30.0.128/25
  gateway=172.30.0.1
  compose_file=$root/docker/compose.yaml
else
  # Its own project and subnet: both tests may run on one machine at once.
  project="cwhook-scale-test"
  subnet=172.31.0.0/24
  ip_range=172.31.0.128/25
  gateway=172.31.0.1
  compose_file=$root/docker/compose.scale.yaml
fi
volume=${project}_cwhook-data
compose=(podman-compose -p "$project" -f "$compose_file" -f "$work/compose.test.yaml")
emulator_pid=

mkdir -p "$cache"
# crun fails on this kind of machine (hybrid cgroups); the engine's default ulimits exceed the
# hard limits. Both settings apply to podman-compose's podman calls too.
cat > "$cache/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$cache/containers.conf
# OCI image format has no HEALTHCHECK; the docker format keeps it.
export BUILDAH_FORMAT=docker

cleanup() {
  local rc=$?
  set +e
  if [ $rc -ne 0 ]; then
    local c
    for c in $(podman ps -a --format '{{.Names}}' | grep "^${project}_"); do
      echo "-- $c log (tail)"; podman logs --tail 20 "$c" 2>&1
      # KEEP=1: the whole logs stay with the work dir.
      [ -z "${KEEP:-}" ] || podman logs "$c" >"$work/$c.log" 2>&1
    done
    echo "-- emulator log (tail)"; tail -n 15 "$work/emulator.log" 2>/dev/null
  fi
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
  [ -e "$work/compose.test.yaml" ] && "${compose[@]}" down -v >/dev/null 2>&1
  remove_project_leftovers
  if [ $rc -eq 0 ] || [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
  exit $rc
}
trap cleanup EXIT

remove_project_leftovers() { # containers, volumes and networks named after the project
  local names
  names=$(podman ps -a --format '{{.Names}}' | grep "^${project}_" || true)
  [ -z "$names" ] || podman rm -f $names >/dev/null 2>&1
  names=$(podman volume ls --format '{{.Name}}' | grep "^${project}_" || true)
  [ -z "$names" ] || podman volume rm -f $names >/dev/null 2>&1
  names=$(podman network ls --format '{{.Name}}' | grep "^${project}_" || true)
  [ -z "$names" ] || podman network rm -f $names >/dev/null 2>&1
  true
}

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -Htln "sport = :$p" | grep -q . || { echo $p; return; }
  done
}

# ---------------------------------------------------------------- 1. base images
base_images() {
  if [ $cold -eq 1 ]; then
    rm -f "$cache/debian-12.tar" "$cache/debian-12-slim.tar"
    podman rmi -f debian:12 debian:12-slim >/dev/null 2>&1 || true
  fi
  if [ ! -s "$cache/debian-12.tar" ]; then
    step "debootstrap --variant=minbase bookworm (cached in $cache)"
    local tree=$work/rootfs
    debootstrap --variant=minbase bookworm "$tree" >"$work/debootstrap.log" 2>&1 \
      || { tail "$work/debootstrap.log"; fail "debootstrap"; }
    rm -rf "$tree"/var/cache/apt/*.bin "$tree"/var/lib/apt/lists/* "$tree"/var/log/*.log
    tar -C "$tree" -cf "$cache/debian-12.tar.tmp" . && mv "$cache/debian-12.tar.tmp" "$cache/debian-12.tar"
    # slim: what Debian's -slim images leave out (documentation, manuals, translations), and a
    # dpkg filter so packages installed later leave them out too.
    rm -rf "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/info/* "$tree"/usr/share/locale/*
    cat > "$tree/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    tar -C "$tree" -cf "$cache/debian-12-slim.tar.tmp" . && mv "$cache/debian-12-slim.tar.tmp" "$cache/debian-12-slim.tar"
    rm -rf "$tree"
    podman rmi -f debian:12 debian:12-slim >/dev/null 2>&1 || true
  fi
  podman image exists debian:12 || podman import -q "$cache/debian-12.tar" debian:12 >/dev/null
  podman image exists debian:12-slim || podman import -q "$cache/debian-12-slim.tar" debian:12-slim >/dev/null
  step "base images: debian:12 $(podman image inspect -f '{{.Size}}' debian:12 | numfmt --to=si)B," \
       "debian:12-slim $(podman image inspect -f '{{.Size}}' debian:12-slim | numfmt --to=si)B"
}
base_images

# ---------------------------------------------------------------- 2. images
step "build context check (.dockerignore; the tree has: $(ls -d build* var .git 2>/dev/null | tr '\n' ' '))"
cat > "$work/Containerfile.context" <<'EOF'
FROM debian:12-slim
COPY . /ctx
RUN for p in build build-asan .git var; do if [ -e /ctx/$p ]; then echo "context has $p" >&2; exit 1; fi; done \
 && test -f /ctx/CMakeLists.txt && echo "context: $(du -sh /ctx | cut -f1), $(find /ctx -type f | wc -l) files"
EOF
podman build --no-cache -f "$work/Containerfile.context" -t localhost/cwhook-context-check:test . >"$work/context.log" 2>&1 \
  || { cat "$work/context.log"; fail ".dockerignore lets build trees into the context"; }
podman rmi -f localhost/cwhook-context-check:test >/dev/null 2>&1 || true
step "$(grep "^context:" "$work/context.log")"

if [ -n "$given_image" ]; then
  step "image: $given_image (built before)"
  podman tag "$given_image" "$image"
elif [ $from_source -eq 1 ]; then
  step "image: docker/Dockerfile, default target (cwhook compiled in the build stage)"
  podman build -f docker/Dockerfile -t "$image" . >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; fail "podman build"; }
else
  step "image: docker/Dockerfile --target runtime-from-binary ($build_dir/daemon/cwhook, stripped)"
  mkdir -p "$work/binary"
  strip -o "$work/binary/cwhook" "$binary"
  cp "$build_dir/config/cwhook.toml" "$work/binary/cwhook.toml"
  podman build --target runtime-from-binary --build-context binary="$work/binary" \
    -f docker/Dockerfile -t "$image" . >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; fail "podman build"; }
fi
step "proxy image: docker/caddy (Debian's caddy package)"
podman build -t "$proxy_image" docker/caddy >"$work/build-caddy.log" 2>&1 || { tail -20 "$work/build-caddy.log"; fail "caddy build"; }
size=$(podman image inspect -f '{{.Size}}' "$image")
step "image $image: $(numfmt --to=si "$size")B ($size bytes); $proxy_image: $(podman image inspect -f '{{.Size}}' "$proxy_image" | numfmt --to=si)B"

# Contents: no compiler, no headers, no package manager, no shell.
mnt=$(podman image mount "$image")
for f in usr/bin/gcc usr/bin/cc usr/bin/c++ usr/bin/g++ usr/bin/apt usr/bin/dpkg usr/bin/perl usr/bin/sh usr/bin/bash \
         usr/bin/dash usr/bin/ls usr/bin/cat usr/bin/curl; do
  if [ -e "$mnt/$f" ]; then podman image unmount "$image" >/dev/null; fail "image contains /$f"; fi
done
headers=$( (find "$mnt/usr/include" -type f 2>/dev/null || true) | wc -l)
contents="$(find "$mnt" -type f | wc -l) files, executables: $(find "$mnt" -type f -perm -u+x ! -name '*.so*' | sed "s|^$mnt||" | tr '\n' ' ')"
podman image unmount "$image" >/dev/null
[ "$headers" -eq 0 ] || fail "image contains $headers headers"
step "image contents: $contents"
[ "$(podman image inspect -f '{{.Config.User}} {{.Config.StopSignal}}' "$image")" = "cwhook SIGTERM" ] \
  || fail "image user/stop signal"
podman image inspect -f '{{.Config.Healthcheck.Test}}' "$image" | grep -q 'healthcheck --ready' \
  || fail "image has no HEALTHCHECK (built in OCI format?)"

# ---------------------------------------------------------------- 3. test CA, key server
step "test CA, proxy and key-server certificates (openssl)"
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cwhook container test CA" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
issue() { # name SANs
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue localhost "DNS:localhost,IP:127.0.0.1"
issue manage.test "DNS:manage.test,DNS:localhost,IP:127.0.0.1"
mkdir -p proxy-certs site.d emulator
cp localhost.pem proxy-certs/cert.pem && cp localhost-key.pem proxy-certs/key.pem
chmod 0644 proxy-certs/*.pem
echo 'tls /certs/cert.pem /certs/key.pem' > site.d/tls.caddy
# The emulator keeps a certificate it finds in its state dir: one signed by the test CA.
cp manage.test.pem emulator/cert.pem && cp manage.test-key.pem emulator/key.pem
cd "$root"

https_port=$(free_port)
http_port=$(free_port)
step "key server: cwhook emulate on the host, https://manage.test (= $gateway from the containers)"
"$binary" emulate --listen 0.0.0.0:0 --host-name manage.test --state-dir "$work/emulator" \
  --delivery-ca-file "$work/ca.pem" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 50); do [ -s "$work/emulator/url" ] && break; sleep 0.2; done
[ -s "$work/emulator/url" ] || fail "emulator did not start"
emulator_port=$(sed 's/.*://' "$work/emulator/url")
emulator_local=https://127.0.0.1:$emulator_port

cw() { # cwhook commands on the host against the emulator (Manage API) as the deployment would
  CWHOOK_MANAGE_SITE=$emulator_local CWHOOK_MANAGE_COMPANY_ID=cwhook_emulator \
  CWHOOK_MANAGE_PUBLIC_KEY=emulatorpublic CWHOOK_MANAGE_PRIVATE_KEY=emulatorprivate \
  CWHOOK_MANAGE_CLIENT_ID=9b0e8d9e-7b0a-4f5e-9a63-3d1c7f7c2a11 CWHOOK_MANAGE_CA_FILE=$work/ca.pem \
  "$binary" "$@"
}

post() { # url id [curl args...]: prints the HTTP status
  local url=$1 id=$2; shift 2
  curl -sS -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$work/ca.pem" "$@" \
    -H 'Content-Type: application/json' -H "x-content-signature: $(cat "$work/bodies/$id.sig")" \
    --data-binary "@$work/bodies/$id.json" "$url?recordId=$id" || true
}

wait_proxy() { # until Caddy answers on the published port with cwhook's /healthz behind it
  # Healthy containers are not enough: Caddy may still be loading its certificate. A delivery
  # Manage cannot connect for is never retried, so nothing is sent before this passes.
  local t0=$SECONDS
  until [ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$work/ca.pem" \
      "https://localhost:$https_port/healthz" 2>/dev/null)" = 200 ]; do
    [ $((SECONDS - t0)) -lt 30 ] || fail "Caddy did not answer /healthz on 127.0.0.1:$https_port within 30s"
    sleep 0.5
  done
  step "Caddy answers https://localhost:$https_port/healthz (cwhook behind it) after $((SECONDS - t0))s"
}

if [ $scale -eq 1 ]; then
  . tests/container/scale.sh
  step "PASSED in $((SECONDS - start))s"
  exit 0
fi

# ---------------------------------------------------------------- 4. compose up
# A run that failed with KEEP=1 may have left its containers, volumes and network behind.
remove_project_leftovers
# podman-compose 1.0.3 ignores `ipam`: the network is made with the compose file's subnet first.
podman network create --subnet $subnet --ip-range $ip_range ${project}_proxy >/dev/null
cat > "$work/compose.test.yaml" <<EOF
services:
  cwhook:
    image: $image
    environment:
      CWHOOK_VERIFY_COMPANIES: cwhook_emulator
      CWHOOK_VERIFY_ALLOWED_KEY_HOSTS: manage.test:$emulator_port
      CWHOOK_VERIFY_CA_FILE: /run/test-ca/ca.pem
    volumes:
      - $work/ca.pem:/run/test-ca/ca.pem:ro
    extra_hosts: ["manage.test:$gateway"]
  caddy:
    image: $proxy_image
    volumes:
      - $work/proxy-certs:/certs:ro
      - $work/site.d:/etc/caddy/site.d:ro
EOF
export CWHOOK_HTTPS_PUBLISH=127.0.0.1:$https_port CWHOOK_HTTP_PUBLISH=127.0.0.1:$http_port
step "podman-compose up: docker/compose.yaml + test override (proxy on 127.0.0.1:$https_port)"
"${compose[@]}" up -d >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log"; fail "podman-compose up"; }
cwhook=${project}_cwhook_1

wait_healthy() {
  local t0=$SECONDS
  until podman healthcheck run "$cwhook" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt 30 ] || fail "HEALTHCHECK did not pass within 30s"
    sleep 0.5
  done
  step "HEALTHCHECK (cwhook healthcheck --ready) passes after $((SECONDS - t0))s"
}
wait_healthy
wait_proxy

user=$(podman top "$cwhook" huser user | awk 'NR==2 {print $1" "$2}')
[ "$user" = "10001 cwhook" ] || fail "daemon runs as '$user', not 10001 cwhook"
[ "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$cwhook")" = true ] || fail "root file system is writable"
podman inspect -f '{{range $k, $v := .HostConfig.Tmpfs}}{{$k}} {{end}}' "$cwhook" | grep -qw /tmp || fail "no tmpfs at /tmp"
podman inspect -f '{{.Config.StopSignal}}' "$cwhook" | grep -qx '15\|SIGTERM' || fail "stop signal is not SIGTERM"
podman inspect -f '{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}} {{end}}' "$cwhook" | grep -q "volume:$volume:/var/lib/cwhook" \
  || fail "no named volume at /var/lib/cwhook"
step "running as uid 10001 (cwhook), read-only root, tmpfs /tmp, volume $volume"

# ---------------------------------------------------------------- 5. deliveries through the proxy
cw subscriptions create --type ticket --level owner --url "https://localhost:$https_port/callbacks?recordId=" >/dev/null \
  || fail "subscriptions create"
for id in 5001 5002 5003; do
  cw emulate trigger --emulator "$emulator_local" --ca-file "$work/ca.pem" --type ticket --action updated --id $id \
    >>"$work/trigger.log" 2>&1 || { cat "$work/trigger.log"; fail "emulated Manage delivery $id"; }
done
step "3 deliveries by the emulator (Manage's shape) -> https://localhost:$https_port -> Caddy -> cwhook: 2xx"

export_events() { # the stored events, read by the image's own CLI from the volume
  podman exec "$cwhook" cwhook events export --format jsonl >"$1"
}
export_events "$work/export1.jsonl"
key_url=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["key_url"])' "$work/export1.jsonl")
signing_key=$(curl -fsS --cacert "$work/ca.pem" --resolve "manage.test:$emulator_port:127.0.0.1" "$key_url" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["signing_key"])')
python3 tests/container/payloads.py make "$work/export1.jsonl" "$signing_key" "$work/bodies" 6001 3
python3 tests/container/payloads.py make "$work/export1.jsonl" "$signing_key" "$work/bodies" 6100 1
python3 tests/container/payloads.py make "$work/export1.jsonl" "$signing_key" "$work/bodies" 7000 400

forged=203.0.113.9
for id in 6001 6002 6003; do
  [ "$(post "https://localhost:$https_port/callbacks" $id -H "X-Forwarded-For: $forged")" = 200 ] \
    || fail "signed callback $id through the proxy"
done
: > "$work/via-proxy.ids"; printf '%s\n' 6001 6002 6003 >> "$work/via-proxy.ids"
cwhook_ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cwhook")
caddy_ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ${project}_caddy_1)
[ "$(post "http://$cwhook_ip:8080/callbacks" 6100 -H "X-Forwarded-For: $forged")" = 200 ] \
  || fail "signed callback straight to cwhook ($cwhook_ip:8080)"
echo 6100 > "$work/direct.ids"
step "3 signed callbacks with a forged X-Forwarded-For through Caddy ($caddy_ip), 1 straight to cwhook ($cwhook_ip) from the host ($gateway)"

export_events "$work/export2.jsonl"
python3 tests/container/payloads.py check "$work/export2.jsonl" "$work/bodies" "$work/via-proxy.ids" > "$work/check-proxy.txt" \
  || { cat "$work/check-proxy.txt"; fail "bodies through the proxy not stored byte-exact and verified"; }
python3 tests/container/payloads.py check "$work/export2.jsonl" "$work/bodies" "$work/direct.ids" > "$work/check-direct.txt" \
  || { cat "$work/check-direct.txt"; fail "direct body not stored byte-exact and verified"; }
# Through the proxy the client is the one Caddy saw (its X-Forwarded-For is believed), never Caddy
# itself nor the forged value; straight to cwhook the forged header is ignored: the peer is stored.
while read -r id addr; do
  [ "$addr" != "$caddy_ip" ] && [ "$addr" != "$forged" ] && [ -n "$addr" ] \
    || fail "callback $id through the proxy stored client '$addr'"
done < "$work/check-proxy.txt"
read -r _ direct_addr < "$work/check-direct.txt"
[ "$direct_addr" = "$gateway" ] || fail "direct callback stored client '$direct_addr', not the peer $gateway"
verified=$(python3 -c 'import json,sys; print(sum(json.loads(l)["status"]=="verified" for l in open(sys.argv[1])))' "$work/export2.jsonl")
[ "$verified" -eq 7 ] || fail "$verified of 7 events verified"
step "7 events verified, bodies byte-exact; client via proxy: $(awk '{print $2}' "$work/check-proxy.txt" | sort -u | tr '\n' ' ')(X-Forwarded-For believed); direct: $direct_addr (forged header ignored)"

# ---------------------------------------------------------------- 6. SIGTERM under load
# compose.yaml's stop_grace_period (podman-compose 1.0.3 does not pass it on: `podman stop -t`).
stop_timeout=$(sed -n 's/^ *stop_grace_period: *\([0-9]*\)s.*/\1/p' docker/compose.yaml)
burst() { # sequential signed deliveries through the proxy; records each acknowledged id
  for id in $(seq 7000 7399); do
    code=$(post "https://localhost:$https_port/callbacks" "$id" 2>>"$work/burst.log")
    [ "$code" = 200 ] && echo "$id" >> "$work/acked.ids"
    echo "$id $code" >> "$work/burst.log"
  done
}
: > "$work/acked.ids"
burst &
burst_pid=$!
# Mid-burst: once 50 deliveries are acknowledged (the burst has 400), however fast the machine.
until [ "$(wc -l < "$work/acked.ids")" -ge 50 ]; do
  kill -0 "$burst_pid" 2>/dev/null || { tail -5 "$work/burst.log"; fail "the burst ended before 50 acknowledgements"; }
  sleep 0.05
done
t0=$(date +%s%N)
podman stop -t "$stop_timeout" "$cwhook" >/dev/null 2>>"$work/podman.log"
t1=$(date +%s%N)
kill "$burst_pid" 2>/dev/null; wait "$burst_pid" 2>/dev/null || true
stop_ms=$(((t1 - t0) / 1000000))
stop_secs=$((stop_ms / 1000)).$((stop_ms % 1000 / 100))
exit_code=$(podman inspect -f '{{.State.ExitCode}}' "$cwhook")
[ "$exit_code" = 0 ] || fail "exit status $exit_code after SIGTERM"
[ "$stop_ms" -lt $((stop_timeout * 1000)) ] || fail "stop took ${stop_secs}s (stop timeout ${stop_timeout}s)"
acked=$(wc -l < "$work/acked.ids")
[ "$acked" -gt 0 ] || fail "no delivery acknowledged before the stop"
step "SIGTERM mid-burst: exit 0 after ${stop_secs}s (stop timeout ${stop_timeout}s); $acked callbacks acknowledged before it"

# cwhook is down, Caddy is not: Manage must get a status it retries (429), never a 502.
code=$(post "https://localhost:$https_port/callbacks" 7399 -D "$work/down.headers" 2>>"$work/burst.log")
[ "$code" = 429 ] && grep -qi '^retry-after:' "$work/down.headers" \
  || fail "with cwhook stopped Caddy answered $code (want 429 with Retry-After: Manage never retries a 5xx)"
step "cwhook stopped: Caddy answers 429 with Retry-After, which Manage retries"

# Read the volume with the image while no daemon runs.
podman run --rm --read-only --no-healthcheck -v "$volume:/var/lib/cwhook" "$image" events export --format jsonl >"$work/export3.jsonl"
python3 tests/container/payloads.py check "$work/export3.jsonl" "$work/bodies" "$work/acked.ids" > "$work/check-acked.txt" \
  || { grep -v ' 172\.' "$work/check-acked.txt" | head; fail "acknowledged callbacks lost"; }
step "every acknowledged callback is in the volume ($(wc -l < "$work/export3.jsonl") events)"

# ---------------------------------------------------------------- 7. a new container, same volume
"${compose[@]}" down -t "$stop_timeout" >"$work/compose-down.log" 2>&1 || { cat "$work/compose-down.log"; fail "podman-compose down"; }
podman volume exists "$volume" || fail "podman-compose down removed the volume"
"${compose[@]}" up -d >"$work/compose-up2.log" 2>&1 || { cat "$work/compose-up2.log"; fail "podman-compose up (again)"; }
wait_healthy
wait_proxy
export_events "$work/export4.jsonl"
cmp -s <(sort "$work/export3.jsonl") <(sort "$work/export4.jsonl") || fail "events differ after the restart"
python3 tests/container/payloads.py check "$work/export4.jsonl" "$work/bodies" "$work/via-proxy.ids" "$work/direct.ids" "$work/acked.ids" >/dev/null \
  || fail "events lost across the restart"
[ "$(post "https://localhost:$https_port/callbacks" 7399)" = 200 ] || fail "delivery after the restart"
step "new container on $volume: all $(wc -l < "$work/export4.jsonl") events still there; it takes deliveries again"

step "PASSED in $((SECONDS - start))s"
