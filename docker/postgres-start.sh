#!/bin/sh
# The stack's PostgreSQL: on first start, a cluster in /var/lib/postgresql/data with
# user $CITAS_DB_USER (trust authentication on loopback, as the sandbox cluster's
# own: ivr/sandbox/postgres.py) and database $CITAS_DB_NAME; then the server on
# 127.0.0.1:$CITAS_DB_PORT (host network), in the foreground.
set -eu
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
  "$bin/initdb" -D "$data" -U "$CITAS_DB_USER" --auth=trust -E UTF8 >/dev/null
  echo "CREATE DATABASE $CITAS_DB_NAME" | "$bin/postgres" --single -D "$data" postgres >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses=127.0.0.1 -c "port=$CITAS_DB_PORT" \
  -c unix_socket_directories=/tmp
