#!/usr/bin/env bash
# MLflow's own client (3.17.2, with scikit-learn and moto's S3 server) against the real binary's
# tracking API and artifact proxy, on SQLite, MariaDB and PostgreSQL (see conftest.py here).
# Expects the venv of scripts/test-env.sh ($MR_TEST_VENV_MLFLOW_TRACKING, default
# <repo>/.venv-mlflow-tracking) and the debug binary (cargo build -p model-registry).
#   e2e/mlflow_tracking/run.sh [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${MR_TEST_VENV_MLFLOW_TRACKING:-$root/.venv-mlflow-tracking}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
[ -x "$venv/bin/python" ] || { echo "run.sh: no venv at $venv (bash scripts/test-env.sh mlflow-tracking)" >&2; exit 1; }
cd "$root"
rc=0
"$venv/bin/python" -m pytest -c e2e/mlflow_tracking/pytest.ini e2e/mlflow_tracking "$@" || rc=$?
# pytest's 5 is "no tests collected": a failure here, never a pass.
[ "$rc" -eq 5 ] && { echo "run.sh: no tests collected" >&2; exit 1; }
exit "$rc"
