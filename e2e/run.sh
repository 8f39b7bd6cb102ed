#!/usr/bin/env bash
# Runs the end-to-end suite e2e/test_python_client.py: the official model-registry Python client
# against the real server binary on SQLite, MariaDB and PostgreSQL (see e2e/conftest.py).
#
#   e2e/run.sh [pytest args...]        e.g. e2e/run.sh -k pager -x
#
# Builds nothing and installs nothing: it expects
#   - the venv of scripts/test-env.sh ($MR_TEST_VENV, default <repo>/.venv),
#   - the server binary ($MR_BIN, default <repo>/target/debug/model-registry: cargo build -p model-registry),
#   - MariaDB and PostgreSQL reachable (MR_TEST_MYSQL_DSN / MR_TEST_POSTGRES_DSN, see conftest.py);
#     an unreachable database fails the tests of that backend, it never skips them.
# MR_E2E_BACKENDS=sqlite,mysql,postgres selects backends (default: all three).
# Exit status: pytest's, except that "no tests collected" (pytest's 5) is a failure too.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MR_TEST_VENV:-$root/.venv}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
py="$venv/bin/python"

if ! [ -x "$py" ] || ! "$py" -c 'import model_registry, pytest, pytest_asyncio' >/dev/null 2>&1; then
    echo "e2e/run.sh: ERROR: no usable venv at $venv (model_registry, pytest, pytest_asyncio): run bash scripts/test-env.sh" >&2
    exit 1
fi

bin="${MR_BIN:-$root/target/debug/model-registry}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if ! [ -x "$bin" ]; then
    echo "e2e/run.sh: ERROR: server binary $bin not found: run cargo build -p model-registry (or set MR_BIN)" >&2
    exit 1
fi
export MR_BIN="$bin"

cd "$root"
"$py" -m pytest -q e2e "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "e2e/run.sh: FAILED: pytest collected no tests (exit 5)" >&2
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "e2e/run.sh: FAILED (pytest exit $rc)" >&2
fi
exit "$rc"
