#!/usr/bin/env bash
# Installs what the oidc auth test (crates/model-registry/tests/auth_oidc.rs) runs: Node.js 20 or
# later and the pinned npm packages of e2e/oidc (package-lock.json, `npm ci`), when missing.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "e2e/oidc: installing Node.js and npm"
    apt-get install -y -o DPkg::Lock::Timeout=600 nodejs npm
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
    echo "e2e/oidc: FATAL: Node.js $(node --version) is too old; oidc-provider needs 20 or later" >&2
    exit 1
fi
# Reinstalled when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
