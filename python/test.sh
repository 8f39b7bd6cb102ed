#!/usr/bin/env bash
# Tests the pip package as README.md and docs/notebook.md install it: `pip install ./python` from
# this checkout into a fresh venv (pip builds it with maturin, the PEP 517 backend), together with
# the official client 0.3.18 and its pins (e2e/requirements-v1.txt); then runs python/tests there.
#
# Only pinned packages: maturin in pip's isolated build environment comes from the constraint
# e2e/requirements-pip.txt (PIP_CONSTRAINT reaches the pip that installs build requirements), and
# everything else is a wheel (PIP_ONLY_BINARY; the package itself is built from ./python).
#
# Profile: a plain `pip install ./python` builds the binary with cargo's release profile into the
# workspace's target/: about 10 CPU-minutes from scratch (21 min of wall time on a busy 2-core
# machine), sharing nothing with the debug build. Here it is built with the dev profile
# (MATURIN_PEP517_ARGS), which reuses the debug build scripts/test already made: the install takes
# about 25 s. MR_PIP_PROFILE=release builds exactly what a user's install builds. Extra arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

# .venv-pip's interpreter is the one scripts/test-env.sh picked for every test venv.
bash scripts/test-env.sh pip >/dev/null
python="$(bash scripts/test-env.sh --list | awk '$1 == "pip" { print $3 }')/bin/python"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$python" -m venv "$out/venv"

profile="${MR_PIP_PROFILE:-dev}"
pep517_args=""
[ "$profile" = release ] || pep517_args="--profile $profile"

# The README's command, with the pins.
PIP_CONSTRAINT="$PWD/e2e/requirements-pip.txt" PIP_ONLY_BINARY=":all:" MATURIN_PEP517_ARGS="$pep517_args" \
    "$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python -r e2e/requirements-v1.txt
"$out/venv/bin/python" -m pip check
echo "python/test.sh: pip install ./python ($profile profile) took $((SECONDS - start)) s"

# From $out, so that nothing of the source tree is importable: the installed package is what runs.
# Not activated: local() must find the binary without the venv's bin/ on PATH, as in a notebook.
rc=0
(cd "$out" && "$out/venv/bin/python" -m pytest -p no:cacheprovider -v "$OLDPWD/python/tests" "$@") || rc=$?
echo "python/test.sh: $((SECONDS - start)) s"
exit $rc
