#!/usr/bin/env bash
# Tests the pip package: builds the model-registry-server wheel with maturin (.venv-pip, pinned in
# e2e/requirements-pip.txt), installs it with the official client 0.3.18 and its pins
# (e2e/requirements-v1.txt) into a fresh venv, and runs python/tests there.
#
# The wheel is built with the dev profile, which reuses the debug build scripts/test already made
# (a release build with LTO takes 10+ minutes on a CI machine); real wheels: `maturin build --release`.
# MR_PIP_PROFILE=release builds this one the same way. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

bash scripts/test-env.sh pip >/dev/null
maturin="$(bash scripts/test-env.sh --list | awk '$1 == "pip" { print $3 }')/bin/maturin"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# maturin reads python/pyproject.toml from the working directory (its manifest-path names the crate).
(cd python && "$maturin" build --quiet --profile "${MR_PIP_PROFILE:-dev}" --out "$out/wheels")
wheel="$(ls "$out"/wheels/*.whl)"
echo "python/test.sh: built $(basename "$wheel") ($(du -h "$wheel" | cut -f1)) in $((SECONDS - start)) s"

# The same interpreter as the other test venvs (scripts/test-env.sh picks it).
"$(dirname "$maturin")/python" -m venv "$out/venv"
"$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    "$wheel" -r e2e/requirements-v1.txt
"$out/venv/bin/python" -m pip check

# From $out, so that nothing of the source tree is importable: the installed wheel is what runs.
# Not activated: local() must find the binary without the venv's bin/ on PATH, as in a notebook.
rc=0
(cd "$out" && "$out/venv/bin/python" -m pytest -p no:cacheprovider -v "$OLDPWD/python/tests" "$@") || rc=$?
echo "python/test.sh: $((SECONDS - start)) s"
exit $rc
