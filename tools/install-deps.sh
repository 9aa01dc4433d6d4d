#!/usr/bin/env bash
# The one list of the Debian 12 packages cwhook needs, by purpose; installs those missing.
# Idempotent and quick when everything is present. Needs root (or sudo) for apt-get.
#
#   tools/install-deps.sh [group...]     default: build
#
#   build    compilers, CMake, the libraries cwhook links (make run, make build)
#   test     build + systemd-analyze (unit checks) and nginx (reverse-proxy test) (make test)
#   lint     build + clang-tidy and cppcheck (make lint)
#   fuzz     build + clang 16 with libFuzzer and the sanitizers (make fuzz)
#   bench    build + wrk, nginx, taskset, python3, /usr/bin/time (bench/*.sh)
#   profile  bench + perf (bench/ingest.sh profile)
#   container build + podman (runc, netavark, iptables), podman-compose, debootstrap, curl
#            (make test-container)
set -euo pipefail

build=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libssl-dev libsimdjson-dev libsqlite3-dev
  libtomlplusplus-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libsystemd-dev
  sqlite3 openssl ca-certificates
)
test=(systemd nginx-light)
lint=(clang-tidy-14 cppcheck)
# clang 16, not Debian 12's default clang 14: clang 14 cannot build the project (no
# parenthesised aggregate initialisation, and "Cannot represent a difference across sections"
# on coroutine code). libclang-rt-16-dev carries libFuzzer and the sanitizers.
fuzz=(clang-16 libclang-rt-16-dev)
bench=(wrk nginx-light python3 util-linux time)
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
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
