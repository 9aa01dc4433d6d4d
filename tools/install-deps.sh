#!/usr/bin/env bash
# The one list of the Debian 12 packages cwhook needs, by purpose; installs those missing.
# Idempotent and quick when everything is present. Needs root (or sudo) for apt-get.
#
#   tools/install-deps.sh [group...]     default: build
#
#   build    compilers, CMake, the libraries cwhook links, libpq headers (make run, make build)
#   test     build + systemd-analyze (unit checks), nginx (reverse-proxy test), the
#            PostgreSQL 15 server binaries the tests start their own clusters with, and
#            Chromium + chromedriver + Selenium for the web console's browser tests (make test)
#   lint     build + clang-tidy and cppcheck (make lint)
#   fuzz     build + clang 16 with libFuzzer and the sanitizers (make fuzz)
#   bench    build + wrk, nginx, taskset, python3, /usr/bin/time, PostgreSQL 15 server and
#            client (bench/*.sh)
#   profile  bench + perf (bench/ingest.sh profile)
#   container build + podman (runc, netavark, iptables), podman-compose, debootstrap, curl
#            (make test-container)
#
# No PostgreSQL package here may leave a system cluster behind: tests and benchmarks initdb
# their own throwaway clusters, so a "15/main" cluster started at boot is only in the way.
set -euo pipefail

build=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libssl-dev libsimdjson-dev libsqlite3-dev
  libtomlplusplus-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libsystemd-dev libpq-dev
  sqlite3 openssl ca-certificates
)
# postgresql-15: initdb, pg_ctl, postgres and the client programs tests drive it with (createdb,
# dropdb, psql, pg_isready) under /usr/lib/postgresql/15/bin.
# chromium, chromium-driver, python3-selenium: tests/browser/ (headless, --no-sandbox as root).
test=(systemd nginx-light postgresql-15 chromium chromium-driver python3-selenium)
lint=(clang-tidy-14 cppcheck)
# clang 16, not Debian 12's default clang 14: clang 14 cannot build the project (no
# parenthesised aggregate initialisation, and "Cannot represent a difference across sections"
# on coroutine code). libclang-rt-16-dev carries libFuzzer and the sanitizers.
fuzz=(clang-16 libclang-rt-16-dev)
bench=(wrk nginx-light python3 util-linux time postgresql-15 postgresql-client-15)
profile=("${bench[@]}" linux-perf)
# Rootful podman with runc (crun fails on hybrid cgroups); netavark needs iptables. debootstrap
# makes the debian:12 base images locally (no registry is reachable).
container=(podman runc netavark aardvark-dns iptables podman-compose debootstrap curl)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build)
packages=("${build[@]}")
for g in "${groups[@]}"; do
  case "$g" in
    build) ;;
    test) packages+=("${test[@]}") ;;
    lint) packages+=("${lint[@]}") ;;
    fuzz) packages+=("${fuzz[@]}") ;;
    bench) packages+=("${bench[@]}") ;;
    profile) packages+=("${profile[@]}") ;;
    container) packages+=("${container[@]}") ;;
    *) echo "install-deps: unknown group '$g' (build, test, lint, fuzz, bench, profile, container)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
# Through env: sudo resets the environment.
apt_env=(env DEBIAN_FRONTEND=noninteractive)

# Installing a postgresql-NN server package creates and starts a "main" cluster unless
# create_main_cluster is false in /etc/postgresql-common/createcluster.conf (documented in
# pg_createcluster(1), "DEFAULT VALUES"). postgresql-common installs that file through ucf,
# which keeps a version already present (UCF_FORCE_CONFFOLD says so without asking), so
# writing it first is enough. An existing file that does not set the knob gets it appended.
if printf '%s\n' "${missing[@]}" | grep -q '^postgresql-[0-9]'; then
  conf=/etc/postgresql-common/createcluster.conf
  if [ ! -e "$conf" ]; then
    $sudo mkdir -p "$(dirname "$conf")"
    echo "create_main_cluster = false" | $sudo tee "$conf" >/dev/null
  elif ! grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=' "$conf"; then
    echo "create_main_cluster = false" | $sudo tee -a "$conf" >/dev/null
  fi
  apt_env+=(UCF_FORCE_CONFFOLD=1)
fi
$sudo "${apt_env[@]}" apt-get update -qq
$sudo "${apt_env[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
