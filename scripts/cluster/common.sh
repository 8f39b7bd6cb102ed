# Shared by the topology scripts: where they keep their data, and how they install what they need.
# Sourced, not run.
CLUSTER_DIR=${MR_CLUSTER_DIR:-/tmp/mr-cluster}
PG_BIN=${MR_PG_BIN:-/usr/lib/postgresql/15/bin}

# Installs the Debian packages named when one of the commands named is missing.
need() { # "command..." "package..."
    local missing=0 c
    for c in $1; do command -v "$c" >/dev/null 2>&1 || [ -e "$c" ] || missing=1; done
    if [ "$missing" = 1 ]; then
        echo "installing $2" >&2
        apt-get install -y -o DPkg::Lock::Timeout=600 $2 >/dev/null
    fi
}

# PostgreSQL and PgBouncer refuse to run as root.
as_postgres() { runuser -u postgres -- "$@"; }

# Waits up to $2 seconds for the command $1 to succeed.
wait_until() {
    local i
    for i in $(seq 1 $(( $2 * 5 ))); do
        if eval "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "FATAL: timed out waiting for: $1" >&2
    return 1
}

# Stops the process whose pid file is $1 (a process these scripts started), waiting for it.
stop_pidfile() {
    local pid
    [ -f "$1" ] || return 0
    pid=$(head -1 "$1")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "${2:--TERM}" "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}
