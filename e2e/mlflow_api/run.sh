#!/usr/bin/env bash
# Runs MLflow's own client (mlflow 3.17.2, .venv-mlflow from e2e/requirements-mlflow.txt) against
# the real server binary on SQLite, MariaDB and PostgreSQL (e2e/mrserver.py), and the differential
# test against MLflow's own server (`mlflow server`, SQLite) on a port of MR_MLFLOW_PORTS.
#
#   e2e/mlflow_api/run.sh [pytest args...]
#
# Expects the venv (bash scripts/test-env.sh mlflow; MR_TEST_VENV_MLFLOW overrides its directory),
# the binary (cargo build -p model-registry; MR_BIN overrides it) and the databases (see
# e2e/conftest.py); a missing one is a failure, never a skip.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${MR_TEST_VENV_MLFLOW:-$root/.venv-mlflow}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import mlflow, pytest, requests' >/dev/null 2>&1; then
    echo "e2e/mlflow_api/run.sh: ERROR: no usable venv at $venv (mlflow, pytest, requests): run bash scripts/test-env.sh mlflow" >&2
    exit 1
fi
bin="${MR_BIN:-$root/target/debug/model-registry}"
if ! [ -x "$bin" ]; then
    echo "e2e/mlflow_api/run.sh: ERROR: server binary $bin not found: run cargo build -p model-registry (or set MR_BIN)" >&2
    exit 1
fi
export MR_BIN="$bin"
cd "$root/e2e/mlflow_api"
exec "$venv/bin/python" -m pytest -q "$@"
