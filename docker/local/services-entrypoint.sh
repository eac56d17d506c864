#!/bin/sh
# `postgres`: a fresh cluster with database and user "strokeaid" (trust auth: the check's
# network is private and short-lived); `redis`: redis-server without persistence.
set -eu
case "${1:-postgres}" in
  postgres)
    bin=$(ls -d /usr/lib/postgresql/*/bin | head -1)
    data=/var/lib/postgresql/check
    mkdir -p "$data" /run/postgresql && chown postgres:postgres "$data" /run/postgresql
    su postgres -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null
    echo "listen_addresses = '*'" >> "$data/postgresql.conf"
    echo "host all all 0.0.0.0/0 trust" >> "$data/pg_hba.conf"
    su postgres -c "$bin/pg_ctl -D $data -w start" >/dev/null
    su postgres -c "psql -q -c \"CREATE USER strokeaid\" -c \"CREATE DATABASE strokeaid OWNER strokeaid\""
    su postgres -c "$bin/pg_ctl -D $data -w stop" >/dev/null
    exec su postgres -c "exec $bin/postgres -D $data"
    ;;
  redis)
    exec redis-server --bind 0.0.0.0 --protected-mode no --save "" --appendonly no
    ;;
  *) exec "$@" ;;
esac
