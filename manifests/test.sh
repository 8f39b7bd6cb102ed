#!/usr/bin/env bash
# Tests the deployment files: each kustomize overlay renders, validates against the Kubernetes
# schemas (strict: an unknown or misspelt field fails) and keeps what it promises (check.py);
# the Dockerfile passes hadolint. Needs kubectl (kustomize built in) and the .venv-deploy venv,
# which it prepares with scripts/test-env.sh. Uses the binary from MR_BIN or target/debug, when
# built, to check that the config keys are real flags.
set -euo pipefail
cd "$(dirname "$0")/.."

# Schema versions shipped inside kubernetes-validate 1.37.0: a common cluster version and the newest.
K8S_VERSIONS=(1.32.0 1.37.0)
OVERLAYS=(sqlite postgres mysql)

kubectl=${KUBECTL:-kubectl}
command -v "$kubectl" >/dev/null || { echo "manifests/test.sh: kubectl not found (set KUBECTL)" >&2; exit 1; }
bash scripts/test-env.sh deploy >/dev/null
venv="$(bash scripts/test-env.sh --list | awk '$1 == "deploy" { print $3 }')"
py="$venv/bin/python"
validate() { "$venv/bin/kubernetes-validate" --strict --quiet $(printf -- '-k %s ' "${K8S_VERSIONS[@]}") "$@"; }
bin=${MR_BIN:-target/debug/model-registry}
[ -x "$bin" ] || { echo "manifests/test.sh: no $bin, config keys not checked against its flags"; bin=""; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1" >&2; failed=$((failed + 1)); }

for o in "${OVERLAYS[@]}"; do
    if ! "$kubectl" kustomize "manifests/overlays/$o" > "$out/$o.yaml"; then fail "$o: kustomize"; continue; fi
    ok "$o: kustomize renders $(grep -c '^kind:' "$out/$o.yaml") objects"
    if validate "$out/$o.yaml"; then ok "$o: valid against Kubernetes ${K8S_VERSIONS[*]}"; else fail "$o: schema validation"; fi
    if "$py" manifests/check.py "$o" "$out/$o.yaml" $bin; then ok "$o: assertions"; else fail "$o: assertions"; fi
done

# The checkers must be able to fail: a misspelt field, and one overlay judged by another's promises.
sed 's/^  replicas:/  replica:/' "$out/postgres.yaml" > "$out/typo.yaml"
if validate "$out/typo.yaml" >/dev/null 2>&1; then fail "canary: a misspelt field passed validation"; else ok "canary: a misspelt field fails validation"; fi
if "$py" manifests/check.py sqlite "$out/postgres.yaml" >/dev/null 2>&1; then fail "canary: postgres passed as sqlite"; else ok "canary: postgres fails the sqlite assertions"; fi
sed 's/- tokenreviews$/- tokenreviewz/' "$out/postgres.yaml" > "$out/no-review.yaml"
if "$py" manifests/check.py postgres "$out/no-review.yaml" >/dev/null 2>&1; then fail "canary: RBAC without tokenreviews passed"; else ok "canary: RBAC without tokenreviews fails"; fi

if "$venv/bin/hadolint" Dockerfile; then ok "Dockerfile: hadolint"; else fail "Dockerfile: hadolint"; fi

echo "manifests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
