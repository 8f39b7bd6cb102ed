#!/usr/bin/env bash
# Runs the end-to-end suite e2e/test_python_client.py: the official model-registry Python client
# against the real server binary on SQLite, MariaDB and PostgreSQL (see e2e/conftest.py), once per
# client, each run over every backend:
#   v1alpha3   model-registry 0.3.14 (/api/model_registry/v1alpha3, experiments included), venv .venv
#   v1         model-registry 0.3.18 (/api/model_registry/v1, no experiments),             venv .venv-v1
#
#   e2e/run.sh [pytest args...]        e.g. e2e/run.sh -k pager -x   (the same arguments for both runs)
#
# Builds nothing and installs nothing: it expects
#   - the venvs of scripts/test-env.sh ($MR_TEST_VENV, default <repo>/.venv; $MR_TEST_VENV_V1,
#     default <repo>/.venv-v1); a missing or unusable venv is a failure, never a skip,
#   - the server binary ($MR_BIN, default <repo>/target/debug/model-registry: cargo build -p model-registry),
#   - MariaDB and PostgreSQL reachable (MR_TEST_MYSQL_DSN / MR_TEST_POSTGRES_DSN, see conftest.py);
#     an unreachable database fails the tests of that backend, it never skips them.
# MR_E2E_CLIENTS=v1alpha3,v1 selects the clients (default: both, in that order).
# MR_E2E_BACKENDS=sqlite,mysql,postgres selects backends (default: all three).
# Both runs always run; the end prints one result line per client.
# Exit status: 0 when every run passed. Otherwise the pytest exit status of the first run that did
# not pass, except that "no tests collected" (pytest's 5) is a failure reported as 1.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

abs() { case "$1" in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }

# client -> venv directory and the API prefix its client must speak
venv_of() {
    case "$1" in
        v1alpha3) abs "${MR_TEST_VENV:-$root/.venv}" ;;
        v1) abs "${MR_TEST_VENV_V1:-$root/.venv-v1}" ;;
    esac
}
api_of() {
    case "$1" in
        v1alpha3) echo /api/model_registry/v1alpha3 ;;
        v1) echo /api/model_registry/v1 ;;
    esac
}
var_of() { case "$1" in v1alpha3) echo MR_TEST_VENV ;; v1) echo MR_TEST_VENV_V1 ;; esac; }

clients=()
IFS=', ' read -r -a wanted <<< "${MR_E2E_CLIENTS:-v1alpha3,v1}"
for c in "${wanted[@]}"; do
    case "$c" in
        v1alpha3 | v1) clients+=("$c") ;;
        "") ;;
        *) echo "e2e/run.sh: ERROR: MR_E2E_CLIENTS: unknown client '$c' (known: v1alpha3, v1)" >&2; exit 1 ;;
    esac
done
if [ ${#clients[@]} -eq 0 ]; then
    echo "e2e/run.sh: ERROR: MR_E2E_CLIENTS selects no client (known: v1alpha3, v1)" >&2
    exit 1
fi

bin="${MR_BIN:-$root/target/debug/model-registry}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if ! [ -x "$bin" ]; then
    echo "e2e/run.sh: ERROR: server binary $bin not found: run cargo build -p model-registry (or set MR_BIN)" >&2
    exit 1
fi
export MR_BIN="$bin"

# Every selected venv must be usable before anything runs, and hold the client of its API.
for c in "${clients[@]}"; do
    venv="$(venv_of "$c")"
    py="$venv/bin/python"
    if ! [ -x "$py" ] || ! "$py" -c 'import model_registry, mr_openapi, pytest, pytest_asyncio' >/dev/null 2>&1; then
        echo "e2e/run.sh: ERROR: no usable venv for the $c client at $venv (model_registry, pytest, pytest_asyncio): run bash scripts/test-env.sh (or set $(var_of "$c"))" >&2
        exit 1
    fi
    speaks="$(cd "$root/e2e" && "$py" -c 'import clientinfo; print(clientinfo.API)' 2>&1)" || {
        echo "e2e/run.sh: ERROR: $venv: cannot tell which API its client speaks: $speaks" >&2
        exit 1
    }
    if [ "$speaks" != "$(api_of "$c")" ]; then
        echo "e2e/run.sh: ERROR: the venv for the $c client ($venv) holds model-registry $("$py" -c 'import importlib.metadata as m; print(m.version("model-registry"))'), which calls $speaks, not $(api_of "$c"): run bash scripts/test-env.sh (or fix $(var_of "$c"))" >&2
        exit 1
    fi
done

cd "$root"
logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT
summary=()
final=0
for c in "${clients[@]}"; do
    venv="$(venv_of "$c")"
    py="$venv/bin/python"
    what="$(cd "$root/e2e" && "$py" -c 'import clientinfo; print(clientinfo.describe())')"
    echo "=== e2e/run.sh: $what; venv $venv"
    log="$logdir/$c.log"
    "$py" -m pytest -q e2e "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # pytest's closing line, e.g. "88 passed, 21 deselected in 80.1s (0:01:20)"
    result="$(grep -E '(passed|failed|error|errors|skipped|deselected|no tests ran|xfailed|xpassed)( |,|$)' "$log" \
        | grep -E ' in [0-9.]+s' | tail -n 1)"
    [ -n "$result" ] || result="(no pytest summary line)"
    if [ "$rc" -eq 0 ]; then
        status="ok"
    elif [ "$rc" -eq 5 ]; then
        status="FAILED: pytest collected no tests (exit 5)"
        [ "$final" -ne 0 ] || final=1
    else
        status="FAILED (pytest exit $rc)"
        [ "$final" -ne 0 ] || final=$rc
    fi
    summary+=("e2e/run.sh: client $c ($what): $result -> $status")
    echo
done

printf '%s\n' "${summary[@]}"
if [ "$final" -ne 0 ]; then
    echo "e2e/run.sh: FAILED (exit $final)" >&2
fi
exit "$final"
