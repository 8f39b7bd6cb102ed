#!/usr/bin/env bash
# PgBouncer (Debian's 1.18) in transaction pooling on 127.0.0.1:6433, in front of the PostgreSQL
# at $MR_PGBOUNCER_UPSTREAM (default 127.0.0.1:5432), every database name passed through.
#   scripts/cluster/pgbouncer.sh start|stop
# Idempotent: start replaces a running instance, stop does nothing when none runs.
set -euo pipefail
. "$(dirname "$0")/common.sh"

PORT=${MR_PGBOUNCER_PORT:-6433}
UPSTREAM=${MR_PGBOUNCER_UPSTREAM:-127.0.0.1:5432}
DIR=$CLUSTER_DIR/pgbouncer
# Server connections per database (each test's own database) and for the user overall: the
# shared PostgreSQL allows 100.
POOL_SIZE=${MR_PGBOUNCER_POOL_SIZE:-5}
USER_CONNECTIONS=${MR_PGBOUNCER_USER_CONNECTIONS:-30}

stop() { stop_pidfile "$DIR/pgbouncer.pid"; }

start() {
    need pgbouncer pgbouncer
    stop
    mkdir -p "$DIR"
    cat >"$DIR/pgbouncer.ini" <<INI
[databases]
* = host=${UPSTREAM%:*} port=${UPSTREAM##*:}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = $POOL_SIZE
max_user_connections = $USER_CONNECTIONS
; sqlx asks for extra_float_digits, which PgBouncer does not track; values travel in binary.
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
admin_users = root
INI
    printf '"root" ""\n' >"$DIR/userlist.txt"
    chown -R postgres:postgres "$DIR"
    as_postgres pgbouncer -d "$DIR/pgbouncer.ini"
    wait_until "$PG_BIN/pg_isready -q -h 127.0.0.1 -p $PORT" 20
    echo "PgBouncer (transaction pooling) on 127.0.0.1:$PORT -> $UPSTREAM"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
