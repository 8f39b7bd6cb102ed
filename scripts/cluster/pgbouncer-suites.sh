#!/usr/bin/env bash
# The REST integration tests and the official Python clients' suites on PostgreSQL, through
# PgBouncer in transaction pooling (scripts/cluster/pgbouncer.sh), the server in its
# --embedmd-database-pooler=transaction mode. PgBouncer is stopped however the run ends.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/cluster/pgbouncer.sh start
trap 'bash scripts/cluster/pgbouncer.sh stop' EXIT
export MR_TEST_POSTGRES_POOLER_DSN=postgres://root@127.0.0.1:${MR_PGBOUNCER_PORT:-6433}/test

cargo nextest run -p model-registry --no-fail-fast \
    --test api --test server --test startup --test guard --test observe --test hostile -E 'test(/postgres/)'
cargo build -p model-registry
MR_E2E_BACKENDS=postgres bash e2e/run.sh
