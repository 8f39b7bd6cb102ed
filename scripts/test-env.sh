#!/usr/bin/env bash
# Prepare the Python side of the test suite: a virtualenv with the pinned packages of
# e2e/requirements.txt (ml-metadata 1.17.1, the MLMD oracle used by the Rust tests; the official
# model-registry Python client and pytest, used by the end-to-end suite e2e/run.sh).
#
#   scripts/test-env.sh            create/update the venv (idempotent, fast when up to date)
#
# Environment:
#   MR_TEST_VENV   venv directory (default: <repo root>/.venv), the same variable testkit reads
#   PYTHON         interpreter to build the venv with (default: python3, else python3.11);
#                  ml-metadata 1.17.1 ships wheels for CPython 3.9-3.11 only and model-registry
#                  0.3.14 needs >= 3.10, so CPython 3.10 or 3.11
#
# The install is skipped when the stamp file in the venv matches the hash of the requirements
# file and the interpreter version. Any failure exits non-zero with a message.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MR_TEST_VENV:-$root/.venv}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac  # relative: against the repo root, as testkit does
req="$root/e2e/requirements.txt"
stamp="$venv/.mr-test-env.stamp"

die() { echo "test-env.sh: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "test-env.sh: FAILED (exit $rc) - see the output above" >&2' EXIT

[ -f "$req" ] || die "missing $req"

supported() { "$1" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 11) else 1)' 2>/dev/null; }

pick_python() {
    local c
    for c in ${PYTHON:-} python3 python3.11 python3.10; do
        if command -v "$c" >/dev/null 2>&1 && supported "$c"; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

py="$(pick_python)" || die "no CPython 3.10-3.11 found (ml-metadata 1.17.1 and model-registry 0.3.14 need one); set PYTHON=/path/to/python3.11"
py="$("$py" -c 'import sys; print(sys.executable)')"  # resolve pyenv shims
pyver="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

want="$( { sha256sum "$req" | cut -d' ' -f1; echo "python=$pyver"; } | sha256sum | cut -d' ' -f1)"

vpy="$venv/bin/python"
if [ -x "$vpy" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$vpy" -c 'import ml_metadata.metadata_store.metadata_store, model_registry, pytest' >/dev/null 2>&1; then
    echo "test-env.sh: $venv is up to date (python $pyver)"
    exit 0
fi

if [ -d "$venv" ] && { ! [ -x "$vpy" ] || ! "$vpy" -c 'import sys' >/dev/null 2>&1 \
        || [ "$("$vpy" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" != "$pyver" ]; }; then
    echo "test-env.sh: recreating broken or outdated venv $venv"
    rm -rf "$venv"
fi

if [ ! -x "$vpy" ]; then
    echo "test-env.sh: creating venv $venv with $py ($pyver)"
    "$py" -m venv "$venv" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
fi

rm -f "$stamp"
echo "test-env.sh: installing $req"
"$vpy" -m pip install --disable-pip-version-check --quiet --only-binary=:all: -r "$req" \
    || die "pip install -r $req failed"
"$vpy" -m pip check || die "pip check failed: inconsistent dependencies in $venv"
"$vpy" - <<'EOF' || die "ml-metadata, model-registry or pytest does not import in the venv"
from ml_metadata.metadata_store import metadata_store  # noqa: F401
from ml_metadata.proto import metadata_store_pb2  # noqa: F401
from model_registry import ModelRegistry  # noqa: F401
import pytest  # noqa: F401
import importlib.metadata as md
print("test-env.sh: ml-metadata", md.version("ml-metadata"), "protobuf", md.version("protobuf"),
      "model-registry", md.version("model-registry"), "pytest", md.version("pytest"))
EOF
echo "$want" > "$stamp"
echo "test-env.sh: ready: $venv"
