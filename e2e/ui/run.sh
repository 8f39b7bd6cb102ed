#!/usr/bin/env bash
# The web UI in a real browser (e2e/ui/ui.test.mjs, node's test runner): the real binary on
# SQLite and on PostgreSQL (a fresh database created here and dropped after), each driven by
# Debian's chromium through playwright-core, with axe-core's checks and screenshots; then the
# login page (login.test.mjs) with the server in --auth-mode token.
#
#   e2e/ui/run.sh                     MR_UI_BACKENDS=sqlite,postgres (default: both)
#
# Expects the server binary ($MR_BIN, default <repo>/target/debug/model-registry: cargo build -p
# model-registry). Installs what is missing: chromium and node/npm (apt), the pinned npm packages
# (npm ci into e2e/ui/node_modules). PostgreSQL: MR_TEST_POSTGRES_DSN (admin URL, default
# postgres://root@127.0.0.1:5432/test); unreachable is a failure, never a skip.
# Screenshots and server logs: e2e/ui/out/<backend>/ (git-ignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${MR_BIN:-$root/target/debug/model-registry}"
[ -x "$bin" ] || { echo "e2e/ui/run.sh: ERROR: no server binary at $bin: run cargo build -p model-registry (or set MR_BIN)" >&2; exit 1; }

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}"
    apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need_apt[@]}" >/dev/null
fi
cd "$here"
# npm ci unless both packages are installed at the versions package.json pins.
installed() { node -e 'const p = require("./package.json").devDependencies;
  process.exit(Object.keys(p).every((n) => { try { return require(`./node_modules/${n}/package.json`).version === p[n]; }
  catch { return false; } }) ? 0 : 1)'; }
installed || npm ci --no-audit --no-fund --loglevel=error

admin="${MR_TEST_POSTGRES_DSN:-postgres://root@127.0.0.1:5432/test}"
tmp="$(mktemp -d)"
server=""
database=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    if [ -n "$database" ]; then psql -X -q "$admin" -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Starts the binary on port 0 with DSN $1, logging to $2, with the flags that follow; sets $server
# and $base (the UI's address).
start() {
    "$bin" proxy --hostname 127.0.0.1 --port 0 --embedmd-database-dsn "$1" "${@:3}" >"$2" 2>&1 &
    server=$!
    for _ in $(seq 1 300); do
        url="$(sed -n 's/.*web UI url=\(http[^ ]*\).*/\1/p' "$2" | head -1)"
        if [ -n "$url" ] && curl -fsS "${url}readyz/health" >/dev/null 2>&1; then
            base="${url%/}"
            return
        fi
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    echo "e2e/ui/run.sh: ERROR: the server did not become ready; its log:" >&2
    cat "$2" >&2
    exit 1
}

status=0
IFS=', ' read -r -a backends <<< "${MR_UI_BACKENDS:-sqlite,postgres}"
for backend in "${backends[@]}"; do
    out="$here/out/$backend"
    rm -rf "$out" && mkdir -p "$out"
    case "$backend" in
        sqlite) dsn="$tmp/registry.db" ;;
        postgres)
            database="mr_ui_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            psql -X -q "$admin" -c "CREATE DATABASE \"$database\"" >/dev/null \
                || { echo "e2e/ui/run.sh: ERROR: PostgreSQL at $admin is unreachable" >&2; exit 1; }
            dsn="$(echo "$admin" | sed -E "s#/[^/?]*(\?|$)#/$database\1#")" ;;
        *) echo "e2e/ui/run.sh: ERROR: unknown backend $backend (sqlite, postgres)" >&2; exit 1 ;;
    esac
    start "$dsn" "$out/server.log"
    echo "== web UI in chromium on $backend ($base)"
    MR_UI_BASE="$base" MR_UI_OUT="$out" node --test --test-concurrency=1 ui.test.mjs || status=1
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
    if [ -n "$database" ]; then psql -X -q "$admin" -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null; database=""; fi
done

# The login page (login.test.mjs) with --auth-mode token, on SQLite.
out="$here/out/token"
rm -rf "$out" && mkdir -p "$out"
token="e2e-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf %s "$token" | "$bin" auth hash-token --name e2e --role writer >"$tmp/tokens"
start "$tmp/token.db" "$out/server.log" --auth-mode token --auth-token-file "$tmp/tokens"
echo "== the login page in chromium, --auth-mode token ($base)"
MR_UI_BASE="$base" MR_UI_OUT="$out" MR_UI_TOKEN="$token" node --test --test-concurrency=1 login.test.mjs || status=1
kill "$server"
wait "$server" 2>/dev/null || true
server=""
exit $status
