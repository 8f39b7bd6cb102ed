#!/usr/bin/env bash
# Bench W1, W2 and W5 (16 clients) on a single MariaDB and PostgreSQL (the shared services), and
# through the Galera cluster (scripts/cluster/galera.sh) and PgBouncer in transaction pooling
# (scripts/cluster/pgbouncer.sh, in front of the same PostgreSQL), one after the other, for
# MR_BENCH_ROUNDS rounds (default 2) to show the spread. Each bench invocation gets a fresh
# database and server. The topologies are stopped however the run ends.
#   scripts/cluster/bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# The whole run holds the release lock once, so that no other build or benchmark runs between
# its measurements. MR_RELEASE_LOCK_HELD=1: the caller holds it already.
if [ -z "${MR_RELEASE_LOCK_HELD:-}" ]; then
    exec env MR_RELEASE_LOCK_HELD=1 flock /tmp/mr-release.lock bash "$0" "$@"
fi

ROUNDS=${MR_BENCH_ROUNDS:-2}
SETTINGS=(--clients 16 --duration-secs "${MR_BENCH_SECS:-5}" --mixed-secs "${MR_BENCH_MIXED_SECS:-10}"
    --seed-models 2000 --analyze without --workloads w1,w2,w5)
MYSQL=${MR_TEST_MYSQL_DSN:-mysql://root@127.0.0.1:3306}
POSTGRES=${MR_TEST_POSTGRES_DSN:-postgres://root@127.0.0.1:5432/test}

cargo build --release -p model-registry -p bench
trap 'bash scripts/cluster/galera.sh stop; bash scripts/cluster/pgbouncer.sh stop' EXIT
# Each commit flushed to disk, as on the single MariaDB, so that only replication differs.
MR_GALERA_FLUSH_AT_COMMIT=1 bash scripts/cluster/galera.sh start
bash scripts/cluster/pgbouncer.sh start

bench() { # label, bench flags...
    echo "== $1 (round $round)"
    shift
    target/release/bench "${SETTINGS[@]}" "$@"
}
for round in $(seq 1 "$ROUNDS"); do
    bench "MariaDB, single" --backends mysql --mysql-admin-dsn "$MYSQL"
    bench "MariaDB Galera, 3 nodes" --backends mysql --mysql-admin-dsn mysql://root@127.0.0.1:3311 \
        --server-hosts 127.0.0.1:3311,127.0.0.1:3312,127.0.0.1:3313
    bench "PostgreSQL, single" --backends postgres --postgres-admin-dsn "$POSTGRES"
    bench "PostgreSQL through PgBouncer" --backends postgres --postgres-admin-dsn "$POSTGRES" \
        --server-hosts 127.0.0.1:6433 --server-arg=--embedmd-database-pooler=transaction
done
