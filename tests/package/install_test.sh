#!/usr/bin/env bash
# Installs the cwhook .deb from BUILD_DIR on this machine (root), checks what an operator gets,
# and purges it again. Exit 0 only when every check passed.
#   tests/package/install_test.sh build-package
set -euo pipefail
BUILD_DIR=${1:?usage: $0 BUILD_DIR}
deb=$(ls -t "$BUILD_DIR"/cwhook_*.deb | head -n1)
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i)"
echo "install_test: $deb"
info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
sed -n 's/^ \(Package\|Version\|Depends\):/  \1:/p' <<<"$info"
grep -q '^ Depends:.*libsqlite3' <<<"$info" && grep -q '^ Depends:.*libpq5' <<<"$info" || fail "Depends does not name the runtime libraries"
grep -q '\./etc/cwhook/cwhook.toml' <<<"$contents" || fail "no /etc/cwhook/cwhook.toml in the package"
dpkg-deb -e "$deb" "$BUILD_DIR/control" && grep -qx '/etc/cwhook/cwhook.toml' "$BUILD_DIR/control/conffiles" ||
  fail "/etc/cwhook/cwhook.toml is not a conffile"

trap 'dpkg --purge cwhook >/dev/null 2>&1 || true' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "$(realpath "$deb")" >/dev/null
[ -x /usr/bin/cwhook ] || fail "/usr/bin/cwhook missing"
/usr/bin/cwhook --version | grep -q '^cwhook ' || fail "cwhook --version"
/usr/bin/cwhook check-config --config /etc/cwhook/cwhook.toml >"$BUILD_DIR/effective.toml" || fail "check-config on the installed configuration"
grep -q '/var/lib/cwhook/cwhook.db' "$BUILD_DIR/effective.toml" || fail "installed configuration does not use /var/lib/cwhook"
getent passwd cwhook >/dev/null || fail "postinst did not create the cwhook user"
[ "$(stat -c %U /var/lib/cwhook)" = cwhook ] || fail "/var/lib/cwhook is not owned by cwhook"
[ -f /lib/systemd/system/cwhook.service ] || [ -f /usr/lib/systemd/system/cwhook.service ] || fail "unit not installed"
grep -q '^ExecStart=/usr/bin/cwhook serve --config /etc/cwhook/cwhook.toml' /usr/lib/systemd/system/cwhook.service ||
  fail "ExecStart does not name the installed binary"
[ -f /usr/share/man/man1/cwhook.1.gz ] || [ -f /usr/share/man/man1/cwhook.1 ] || fail "man page missing"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no /usr/lib/systemd/system/cwhook.service /usr/lib/systemd/system/cwhook.socket ||
    fail "systemd-analyze verify on the installed units"
fi
# The installed daemon serves with the packaged configuration (as the cwhook user would).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CWHOOK_SERVER_LISTEN="127.0.0.1:$port" setpriv --reuid=cwhook --regid=cwhook --init-groups \
  /usr/bin/cwhook serve --config /etc/cwhook/cwhook.toml >"$BUILD_DIR/serve.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 100); do
  if CWHOOK_SERVER_LISTEN="127.0.0.1:$port" /usr/bin/cwhook healthcheck --ready --config /etc/cwhook/cwhook.toml >/dev/null 2>&1; then
    ok=1; break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true
[ "$ok" = 1 ] || { cat "$BUILD_DIR/serve.log" >&2; fail "installed daemon did not become ready"; }
[ -f /var/lib/cwhook/cwhook.db ] || fail "database not created under /var/lib/cwhook"
dpkg --purge cwhook >/dev/null
[ ! -e /var/lib/cwhook ] || fail "purge left /var/lib/cwhook"
trap - EXIT
echo "install_test: OK (installed, checked, served as user cwhook, purged)"
