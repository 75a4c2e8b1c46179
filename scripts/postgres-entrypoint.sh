#!/bin/sh
# The entry point of the tests' Postgres image (scripts/base-images.sh), which these machines build
# from Debian's postgresql package since no registry can be pulled from. It reads the environment the
# official image reads, the part of it the program sets (restdemo:database on the local stack):
# POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD) and PGDATA. A new data
# directory is initialised once (scram-sha-256 for every connection over the network); Postgres then
# runs in the foreground as the postgres user.
set -eu
# Anything but the server runs as given (as the official entry point does): an image built on this one
# runs its own command.
if [ "${1:-postgres}" != postgres ]; then
  exec "$@"
fi
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec runuser -u postgres -- "$0" postgres
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    password=$(cat "$POSTGRES_PASSWORD_FILE")
  else
    password=${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$password" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --no-instructions >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$database" != postgres ]; then
    "$bin/psql" -v ON_ERROR_STOP=1 -U "$user" -d postgres -q -c "CREATE DATABASE \"$database\""
  fi
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres-entrypoint: initialised $PGDATA for $user, database $database"
fi

exec "$bin/postgres" -D "$PGDATA"
