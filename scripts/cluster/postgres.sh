#!/usr/bin/env bash
# A PostgreSQL 15 primary on 127.0.0.1:5433 and a synchronous streaming standby on 5434
# (pg_basebackup; synchronous_standby_names, so an acknowledged commit is on both), data under
# $MR_CLUSTER_DIR/pg (default /tmp/mr-cluster/pg). User root, trust, database "registry".
#   scripts/cluster/postgres.sh start|stop|kill-primary|promote
# start replaces whatever ran there; stop does nothing when nothing runs.
set -euo pipefail
. "$(dirname "$0")/common.sh"

DIR=$CLUSTER_DIR/pg
PRIMARY_PORT=${MR_PG_PRIMARY_PORT:-5433}
STANDBY_PORT=${MR_PG_STANDBY_PORT:-5434}
# Room for 16 replicas of 5 connections each, and the tests' own.
MAX_CONNECTIONS=${MR_PG_MAX_CONNECTIONS:-120}

pg() { as_postgres "$PG_BIN/$@"; }

stop() {
    local node
    for node in standby primary; do
        if [ -f "$DIR/$node/postmaster.pid" ]; then
            pg pg_ctl -D "$DIR/$node" -m immediate -w stop >/dev/null 2>&1 || stop_pidfile "$DIR/$node/postmaster.pid" -KILL
        fi
    done
    rm -rf "$DIR"
}

start() {
    [ -x "$PG_BIN/initdb" ] || need "$PG_BIN/initdb" postgresql-15
    stop
    mkdir -p "$DIR"
    chown postgres:postgres "$DIR"
    pg initdb -D "$DIR/primary" -U root --auth=trust >/dev/null
    cat >>"$DIR/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$DIR'
max_connections = $MAX_CONNECTIONS
shared_buffers = 64MB
wal_level = replica
max_wal_senders = 4
wal_keep_size = 64MB
hot_standby = on
synchronous_commit = on
CONF
    pg pg_ctl -D "$DIR/primary" -l "$DIR/primary.log" -w start >/dev/null
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U root -d postgres -c "CREATE DATABASE registry"
    pg pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U root -D "$DIR/standby" -R --checkpoint=fast --wal-method=stream
    cat >>"$DIR/standby/postgresql.auto.conf" <<CONF
primary_conninfo = 'host=127.0.0.1 port=$PRIMARY_PORT user=root application_name=standby'
CONF
    echo "port = $STANDBY_PORT" >>"$DIR/standby/postgresql.conf"
    pg pg_ctl -D "$DIR/standby" -l "$DIR/standby.log" -w start >/dev/null
    # Synchronous from here on: set before the standby existed, every commit would wait for it.
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U root -d postgres \
        -c "ALTER SYSTEM SET synchronous_standby_names = 'standby'" -c "SELECT pg_reload_conf()" >/dev/null
    wait_until "[ \"\$($PG_BIN/psql -tAq -h 127.0.0.1 -p $PRIMARY_PORT -U root -d postgres -c \"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'\")\" = sync ]" 30
    echo "PostgreSQL primary on 127.0.0.1:$PRIMARY_PORT, synchronous standby on 127.0.0.1:$STANDBY_PORT"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    # The primary's postmaster, as a machine loss would: no shutdown, no last WAL sent.
    kill-primary) stop_pidfile "$DIR/primary/postmaster.pid" -KILL ;;
    promote) pg pg_ctl -D "$DIR/standby" -w promote >/dev/null ;;
    *) echo "usage: $0 start|stop|kill-primary|promote" >&2; exit 2 ;;
esac
