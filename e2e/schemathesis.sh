#!/usr/bin/env bash
# Fuzzes the server against the OpenAPI documents it serves itself, with schemathesis 4.
#
#   e2e/schemathesis.sh                       both API versions (v1, v1alpha3)
#   MR_SCHEMATHESIS_APIS=v1 e2e/schemathesis.sh
#   e2e/schemathesis.sh --include-path-regex registered   extra arguments go to every `st run`
#                                             (run in the work directory: give paths as absolute)
#
# Starts the server binary ($MR_BIN, default <repo>/target/debug/model-registry; not built here) on a
# fresh SQLite file and a free port, waits for GET /readyz/health 200, then for each API version runs
# `st run http://127.0.0.1:<port>/api/model_registry/<version>/openapi.json` (the document as the
# server serves it; operations are called under its own base path) with a fixed seed and a fixed
# number of examples per operation, phases examples, coverage, fuzzing and stateful (links inferred
# by schemathesis: a few seconds that carry real ids between operations), and the checks
# not_a_server_error, response_schema_conformance, status_code_conformance and
# content_type_conformance (about 2 minutes on 2 cores). Exits non-zero when any check fails (a
# 5xx, a response outside the documented statuses, content types or schemas) or schemathesis cannot
# run; prints a summary and the server's ERROR lines. The server is always stopped (trap).
#
# Expects the venv of scripts/test-env.sh for e2e/requirements-schemathesis.txt
# ($MR_TEST_VENV_SCHEMATHESIS, default <repo>/.venv-schemathesis).
#
# Environment:
#   MR_BIN                         server binary
#   MR_SCHEMATHESIS_APIS           API versions to fuzz, space- or comma-separated (default "v1 v1alpha3")
#   MR_SCHEMATHESIS_SEED           seed (default 20260501)
#   MR_SCHEMATHESIS_MAX_EXAMPLES   examples per operation and phase (default 20)
#   MR_SCHEMATHESIS_WORKERS        concurrent workers (default 1: CPython 3.11.7's ast module is not
#                                  thread-safe, and hypothesis parses sources in every worker)
#   MR_SCHEMATHESIS_PHASES         phases (default examples,coverage,fuzzing,stateful)
#   MR_SCHEMATHESIS_KEEP=1         keep the work directory (database, server log, JUnit reports)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MR_TEST_VENV_SCHEMATHESIS:-$root/.venv-schemathesis}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
st="$venv/bin/st"
py="$venv/bin/python"

apis="${MR_SCHEMATHESIS_APIS:-v1 v1alpha3}"
apis="${apis//,/ }"
seed="${MR_SCHEMATHESIS_SEED:-20260501}"
max_examples="${MR_SCHEMATHESIS_MAX_EXAMPLES:-20}"
workers="${MR_SCHEMATHESIS_WORKERS:-1}"
phases="${MR_SCHEMATHESIS_PHASES:-examples,coverage,fuzzing,stateful}"
checks="not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"

say() { echo "schemathesis.sh: $*"; }
die() { echo "schemathesis.sh: ERROR: $*" >&2; exit 1; }

if ! [ -x "$st" ] || ! "$py" -c 'import schemathesis' >/dev/null 2>&1; then
    die "no usable venv at $venv (schemathesis): run bash scripts/test-env.sh"
fi

bin="${MR_BIN:-$root/target/debug/model-registry}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
[ -x "$bin" ] || die "server binary $bin not found: run cargo build -p model-registry (or set MR_BIN)"

work="$(mktemp -d "${TMPDIR:-/tmp}/mr-schemathesis.XXXXXX")"
log="$work/server.log"
server_pid=""

stop_server() {
    [ -n "$server_pid" ] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 1 150); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            say "server did not stop on SIGTERM within 15 s; killing it"
            kill -KILL "$server_pid" 2>/dev/null
        fi
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=""
}

cleanup() {
    local rc=$?
    stop_server
    if [ "${MR_SCHEMATHESIS_KEEP:-}" = 1 ]; then
        say "kept $work (server.log, database, reports)"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------ the server

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# status code of GET url (000 when nothing answers)
http_status() {
    "$py" - "$1" <<'EOF'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print("000")
EOF
}

host=127.0.0.1
port=""
for attempt in 1 2 3; do  # a free port can be taken between probing and binding: retry
    port="$(free_port)"
    echo "=== schemathesis.sh: attempt $attempt: $bin proxy on $host:$port" >>"$log"
    # the server reads MR_* variables as configuration: start it without ours
    (cd "$work" && exec env $(env | grep -o '^MR_[A-Za-z0-9_]*' | sed 's/^/-u /') RUST_LOG="${RUST_LOG:-info}" \
        "$bin" proxy --hostname "$host" --port "$port" \
        --embedmd-database-type sqlite --embedmd-database-dsn "$work/model-registry.db") </dev/null >>"$log" 2>&1 &
    server_pid=$!
    ready=""
    for _ in $(seq 1 300); do  # 30 s
        kill -0 "$server_pid" 2>/dev/null || break
        if [ "$(http_status "http://$host:$port/readyz/health")" = 200 ]; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ready" ] && break
    alive=""
    kill -0 "$server_pid" 2>/dev/null && alive=1
    stop_server
    if [ -n "$alive" ] || ! grep -qi "in use" "$log"; then
        tail -n 40 "$log" >&2
        die "the server did not become ready on $host:$port (log above)"
    fi
done
[ -n "$ready" ] || { tail -n 40 "$log" >&2; die "the server could not bind a port (log above)"; }
origin="http://$host:$port"
say "server ready at $origin (pid $server_pid, SQLite $work/model-registry.db)"
say "schemathesis $("$py" -c 'import importlib.metadata as m; print(m.version("schemathesis"))'): seed $seed," \
    "max examples $max_examples, workers $workers, phases $phases, checks $checks"

# ------------------------------------------------------------------------ the runs

declare -a summary=()
failed=0
total_start=$SECONDS
for api in $apis; do
    url="$origin/api/model_registry/$api/openapi.json"
    status="$(http_status "$url")"
    if [ "$status" != 200 ]; then
        say "$api: GET $url answered $status: the server does not serve this document"
        summary+=("$(printf '%-9s FAILED  document not served (GET %s: %s)' "$api" "${url#"$origin"}" "$status")")
        failed=1
        continue
    fi
    say "=== $api: st run $url"
    start=$SECONDS
    # from the work directory: schemathesis and hypothesis keep .schemathesis/ and .hypothesis/ in the cwd
    (cd "$work" && exec "$st" run "$url" \
        --origin "$origin" \
        --checks "$checks" \
        --phases "$phases" \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --generation-database none \
        --workers "$workers" \
        --request-timeout 30 \
        --no-color \
        --report junit --report-junit-path "$work/junit-$api.xml" \
        "$@")
    rc=$?
    took=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
        summary+=("$(printf '%-9s passed  %4d s' "$api" "$took")")
    else
        summary+=("$(printf '%-9s FAILED  %4d s  (st exit %d)' "$api" "$took" "$rc")")
        failed=1
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        summary+=("server    FAILED  the server exited during the $api run")
        failed=1
        break
    fi
done

errors="$(grep -E ' ERROR |panicked' "$log" | grep -v 'running migration' | tail -n 30)"

echo
say "summary (seed $seed, max examples $max_examples, $((SECONDS - total_start)) s in all):"
for line in "${summary[@]}"; do echo "  $line"; done
if [ -n "$errors" ]; then
    echo "  server log, ERROR lines (last 30):"
    echo "$errors" | sed 's/^/    /'
fi
if [ "$failed" -ne 0 ]; then
    say "FAILED (server log: $log$([ "${MR_SCHEMATHESIS_KEEP:-}" = 1 ] || echo ', removed; MR_SCHEMATHESIS_KEEP=1 keeps it'))"
    exit 1
fi
say "passed"
