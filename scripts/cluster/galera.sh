#!/usr/bin/env bash
# A three-node MariaDB Galera cluster (the machine's MariaDB 10.11, Debian galera-4) on
# 127.0.0.1:3311-3313, group communication on 14561-14563, IST on 14564-14566, rsync SST on
# 14567-14569; data under $MR_CLUSTER_DIR/galera. Node 1 bootstraps, 2 and 3 join by SST.
# User root from 127.0.0.1 without a password; database "registry". The redo log is flushed
# once a second (durability comes from the other nodes), or at each commit with
# MR_GALERA_FLUSH_AT_COMMIT=1, as a single MariaDB's default does.
#   scripts/cluster/galera.sh start|stop|kill N|restart N
# start replaces whatever ran there; stop does nothing when nothing runs.
set -euo pipefail
. "$(dirname "$0")/common.sh"

DIR=$CLUSTER_DIR/galera
MARIADBD=/usr/sbin/mariadbd
CLUSTER_ADDRESS=gcomm://127.0.0.1:14561,127.0.0.1:14562,127.0.0.1:14563

conf() { # node -> its option file
    local n=$1
    cat >"$DIR/node$n.cnf" <<CNF
[mysqld]
user = root
datadir = $DIR/node$n
socket = $DIR/node$n.sock
pid-file = $DIR/node$n.pid
log-error = $DIR/node$n.err
port = 331$n
bind-address = 127.0.0.1
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = ${MR_GALERA_FLUSH_AT_COMMIT:-2}
max_connections = 200
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = mr-cluster
wsrep_cluster_address = $CLUSTER_ADDRESS
wsrep_node_name = node$n
wsrep_node_address = 127.0.0.1:1456$n
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:1456$n;ist.recv_addr=127.0.0.1:1456$((n + 3));gcache.size=64M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:1456$((n + 6))
CNF
}

node_ready() { # node -> whether it is synced and takes queries
    [ "$(mariadb --protocol=tcp -h 127.0.0.1 -P "331$1" -uroot -Nse "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | cut -f2)" = Synced ]
}

start_node() { # node [--wsrep-new-cluster]
    local n=$1
    shift
    mkdir -p "$DIR/node$n"
    # rsync's SST daemon, started as root, writes as nobody.
    chown -R nobody:nogroup "$DIR/node$n"
    (setsid "$MARIADBD" --defaults-file="$DIR/node$n.cnf" "$@" </dev/null >>"$DIR/node$n.out" 2>&1 &)
    wait_until "node_ready $n" 120
}

stop() {
    local n
    for n in 3 2 1; do stop_pidfile "$DIR/node$n.pid"; done
    rm -rf "$DIR"
}

start() {
    need "$MARIADBD /usr/lib/galera/libgalera_smm.so rsync" "galera-4 rsync"
    stop
    mkdir -p "$DIR"
    for n in 1 2 3; do conf "$n"; done
    mariadb-install-db --defaults-file="$DIR/node1.cnf" --auth-root-authentication-method=normal >"$DIR/install.log" 2>&1
    start_node 1 --wsrep-new-cluster
    mariadb -S "$DIR/node1.sock" -uroot -e "CREATE USER IF NOT EXISTS root@'127.0.0.1'; \
        GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE registry" 2>/dev/null ||
        mariadb --protocol=tcp -h 127.0.0.1 -P 3311 -uroot -e "CREATE DATABASE IF NOT EXISTS registry"
    start_node 2
    start_node 3
    echo "Galera cluster of 3 on 127.0.0.1:3311-3313"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    # A node's mariadbd killed, as a machine loss would.
    kill) stop_pidfile "$DIR/node$2.pid" -KILL ;;
    # The killed node started again: it rejoins by IST (or SST) and is ready once synced.
    restart) start_node "$2" ;;
    *) echo "usage: $0 start|stop|kill N|restart N" >&2; exit 2 ;;
esac
