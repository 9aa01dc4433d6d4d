#!/bin/sh
# cwhook-postgres: the entrypoint of docker/postgres/Dockerfile. On an empty data volume it
# makes the cluster (initdb; the role POSTGRES_USER with the password in POSTGRES_PASSWORD_FILE
# and the database POSTGRES_DB it owns, created on a server that listens on its Unix socket
# only; SCRAM password authentication for that role and database over the network, peer
# authentication on the socket). Then, every time, the server in the foreground on all
# addresses, as this process (it receives the stop signal). The password never appears in the
# environment, a command line or the log.
set -eu
bin=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-cwhook}
db=${POSTGRES_DB:-cwhook}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=${POSTGRES_PASSWORD_FILE:-}
  if [ -z "$pwfile" ] || [ ! -r "$pwfile" ] || [ -z "$(tr -d '[:space:]' <"$pwfile")" ]; then
    echo "cwhook-postgres: POSTGRES_PASSWORD_FILE must name a readable, non-empty file: the password of role $user" >&2
    exit 1
  fi
  echo "cwhook-postgres: first start: initdb in $PGDATA, role $user, database $db"
  "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=reject \
    --no-instructions >/dev/null
  cat >>"$PGDATA/pg_hba.conf" <<HBA

# cwhook-postgres: the role $user, to its database, with a password, from anywhere on the
# container networks; nothing else over the network.
host    $db    $user    all    scram-sha-256
HBA
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w -s start
  # psql reads the password file itself (a backquoted command): it is on no command line.
  "$bin/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres -v user="$user" -v db="$db" -v pwfile="$pwfile" <<'SQL'
\set password `cat :'pwfile'`
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w -s stop
fi

exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
