#!/usr/bin/env bash
# Prepare the Python side of the test suite: one virtualenv per requirements file of e2e/, each
# with exactly the pinned packages of its file.
#
#   e2e/requirements.txt          -> .venv      ml-metadata 1.17.1 (the MLMD oracle of the Rust tests),
#                                               model-registry 0.3.14 (REST API v1alpha3) and pytest
#   e2e/requirements-v1.txt       -> .venv-v1   model-registry 0.3.18 (REST API v1) and pytest
#   e2e/requirements-<name>.txt   -> .venv-<name>, for any other such file (e.g. requirements-schemathesis.txt
#                                               -> .venv-schemathesis): a venv needs only its requirements file
#
#   scripts/test-env.sh              create/update every venv (idempotent, fast when up to date)
#   scripts/test-env.sh v1           only some: the names are "default" (.venv) and the <name>s above
#   scripts/test-env.sh --list       print "<name> <requirements file> <venv>" for each and exit
#
# Environment:
#   MR_TEST_VENV          directory of the default venv (default: <repo root>/.venv), the same variable
#                         testkit reads
#   MR_TEST_VENV_<NAME>   directory of the venv of requirements-<name>.txt, <NAME> upper-cased with
#                         '-' and '.' as '_' (MR_TEST_VENV_V1, MR_TEST_VENV_SCHEMATHESIS; default
#                         <repo root>/.venv-<name>). Relative paths are taken against the repo root.
#   PYTHON                interpreter to build the venvs with (default: python3, else python3.11);
#                         ml-metadata 1.17.1 ships wheels for CPython 3.9-3.11 only and model-registry
#                         needs >= 3.10, so CPython 3.10 or 3.11 (the same one for every venv)
#
# pip installs wheels only (--only-binary=:all:), so nothing is compiled. A package that has no wheel
# can be allowed to build from its sdist by a pip option line in its own requirements file:
# `--no-binary <package>` (pip's per-package setting wins over the command line's :all:).
#
# Each venv's install is skipped when its stamp file (.mr-test-env.stamp) matches the hash of its
# requirements file and the interpreter version, and every pinned `name==version` of the file is
# what the venv has installed. Any failure exits non-zero with a message naming the venv.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reqdir="$root/e2e"

die() { echo "test-env.sh: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "test-env.sh: FAILED (exit $rc) - see the output above" >&2' EXIT

# ------------------------------------------------------------------------ the venvs

# name of the venv of a requirements file: requirements.txt -> default, requirements-<n>.txt -> <n>
venv_name() {
    local base
    base="$(basename "$1" .txt)"
    if [ "$base" = requirements ]; then echo default; else echo "${base#requirements-}"; fi
}

# directory of a venv: the override variable, else <root>/.venv[-<name>]; relative against the root
venv_dir() {
    local name=$1 var dir
    if [ "$name" = default ]; then
        var=MR_TEST_VENV
        dir="${MR_TEST_VENV:-$root/.venv}"
    else
        var="MR_TEST_VENV_$(echo "$name" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9\n' '_')"
        dir="${!var:-$root/.venv-$name}"
    fi
    case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
    echo "$dir"
}

[ -f "$reqdir/requirements.txt" ] || die "missing $reqdir/requirements.txt"
[ -f "$reqdir/requirements-v1.txt" ] || die "missing $reqdir/requirements-v1.txt"
all=("$reqdir/requirements.txt")
for f in "$reqdir"/requirements-*.txt; do
    [ -f "$f" ] && all+=("$f")
done

if [ "${1:-}" = --list ]; then
    for f in "${all[@]}"; do echo "$(venv_name "$f") $f $(venv_dir "$(venv_name "$f")")"; done
    exit 0
fi

selected=()
if [ $# -eq 0 ]; then
    selected=("${all[@]}")
else
    for want in "$@"; do
        found=""
        for f in "${all[@]}"; do
            if [ "$(venv_name "$f")" = "$want" ]; then found=$f; fi
        done
        [ -n "$found" ] || die "unknown venv '$want' (known: $(for f in "${all[@]}"; do printf '%s ' "$(venv_name "$f")"; done)); it needs $reqdir/requirements-$want.txt"
        selected+=("$found")
    done
fi

# ------------------------------------------------------------------------ the interpreter

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

py="$(pick_python)" || die "no CPython 3.10-3.11 found (ml-metadata 1.17.1 and model-registry need one); set PYTHON=/path/to/python3.11"
py="$("$py" -c 'import sys; print(sys.executable)')"  # resolve pyenv shims
pyver="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

# ------------------------------------------------------------------------ checks

# Every `name==version` line of the requirements file is installed at that version (names compared
# the way pip normalizes them). Prints what is missing or different; exit 1 if anything is.
PINS_OK='
import importlib.metadata as md, re, sys
bad = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
    if not m:
        continue
    name, want = m.group(1), m.group(3)
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        bad.append(f"{name}: not installed (want {want})")
        continue
    if have != want:
        bad.append(f"{name}: {have} installed, want {want}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
'

# What must import in a venv besides its pins (by name): the Rust tests drive ml-metadata in the
# default venv, e2e/run.sh drives model_registry + pytest in the default and v1 venvs.
imports_of() {
    case "$1" in
        default) echo 'from ml_metadata.metadata_store import metadata_store; from ml_metadata.proto import metadata_store_pb2; from model_registry import ModelRegistry; import pytest, pytest_asyncio' ;;
        v1) echo 'from model_registry import ModelRegistry; import mr_openapi, prometheus_client, pytest, pytest_asyncio' ;;
        *) echo 'import sys' ;;
    esac
}

# ------------------------------------------------------------------------ one venv

prepare() { # requirements-file
    local req=$1 name venv vpy stamp want
    name="$(venv_name "$req")"
    venv="$(venv_dir "$name")"
    vpy="$venv/bin/python"
    stamp="$venv/.mr-test-env.stamp"
    want="$( { sha256sum "$req" | cut -d' ' -f1; echo "python=$pyver"; } | sha256sum | cut -d' ' -f1)"
    local tag="test-env.sh [$name]"

    if [ -x "$vpy" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$vpy" -c "$PINS_OK" "$req" >/dev/null 2>&1 && "$vpy" -c "$(imports_of "$name")" >/dev/null 2>&1; then
        echo "$tag: $venv is up to date (python $pyver, $(basename "$req"))"
        return 0
    fi

    if [ -d "$venv" ] && { ! [ -x "$vpy" ] || ! "$vpy" -c 'import sys' >/dev/null 2>&1 \
            || [ "$("$vpy" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" != "$pyver" ]; }; then
        echo "$tag: recreating broken or outdated venv $venv"
        rm -rf "$venv"
    fi

    if [ ! -x "$vpy" ]; then
        echo "$tag: creating venv $venv with $py ($pyver)"
        "$py" -m venv "$venv" || die "[$name] python -m venv $venv failed (on Debian: apt-get install python3-venv)"
    fi

    rm -f "$stamp"
    echo "$tag: installing $req into $venv"
    "$vpy" -m pip install --disable-pip-version-check --quiet --only-binary=:all: -r "$req" \
        || die "[$name] pip install -r $req into $venv failed (wheels only: a package without a wheel needs a '--no-binary <package>' line in $(basename "$req"))"
    "$vpy" -m pip check || die "[$name] pip check failed: inconsistent dependencies in $venv"
    local diff
    if ! diff="$("$vpy" -c "$PINS_OK" "$req" 2>&1)"; then
        die "[$name] $venv does not hold the pins of $req after the install:"$'\n'"$diff"
    fi
    "$vpy" -c "$(imports_of "$name")" || die "[$name] the packages of $req do not import in $venv: $(imports_of "$name")"
    "$vpy" - "$tag" <<'EOF'
import importlib.metadata as md, sys
have = {d.metadata["Name"].lower() for d in md.distributions()}
shown = [n for n in ("ml-metadata", "protobuf", "model-registry", "pytest", "schemathesis") if n in have]
print(sys.argv[1] + ": " + (", ".join(f"{n} {md.version(n)}" for n in shown) or f"{len(have)} packages"))
EOF
    echo "$want" > "$stamp"
    echo "$tag: ready: $venv"
}

for req in "${selected[@]}"; do
    prepare "$req"
done
