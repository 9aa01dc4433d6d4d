#!/usr/bin/env bash
# The systemd units: `systemd-analyze verify` must pass, and `systemd-analyze security`'s
# exposure score for cwhook.service must be in the "OK" band, at most 2.0 (printed).
#   units_test.sh SOURCE_DIR CWHOOK_BINARY
set -euo pipefail
SRC=${1:?source dir}
BIN=${2:?cwhook binary}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: install Debian's systemd package (make test does)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s|@CWHOOK_BIN@|$BIN|" -e "s|@CWHOOK_CONFIG_DIR@|/etc/cwhook|" "$SRC/systemd/cwhook.service.in" >"$work/cwhook.service"
cp "$SRC/systemd/cwhook.socket" "$work/"
cd "$work"
systemd-analyze verify --man=no ./cwhook.service ./cwhook.socket
out=$(systemd-analyze security --offline=true --no-pager ./cwhook.service 2>&1) || true
line=$(grep -o 'Overall exposure level for cwhook.service: [0-9.]* [A-Z]*' <<<"$out" || true)
[ -n "$line" ] || { echo "$out" >&2; echo "no exposure score printed" >&2; exit 1; }
echo "$line"
score=$(awk '{print $(NF-1)}' <<<"$line")
band=$(awk '{print $NF}' <<<"$line")
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { grep '✗' <<<"$out" >&2; echo "exposure $score above 2.0" >&2; exit 1; }
[ "$band" = OK ] || { echo "band $band, expected OK" >&2; exit 1; }
