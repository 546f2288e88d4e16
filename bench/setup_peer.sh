#!/usr/bin/env bash
# Create (or reuse) bench/.peer-venv with pyRadPlan 0.5.0, the peer TPS of the TG-119 benchmark.
#
# Idempotent: a venv that already imports the pinned versions is left alone.
# Usage: bash bench/setup_peer.sh        (PYTHON=python3.11 by default)
# Exit codes: 0 ready, 1 venv creation or install failed, 2 installed but wrong versions.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEER_VENV:-$HERE/.peer-venv}"
PYTHON="${PYTHON:-python3.11}"
PYRADPLAN_VERSION="0.5.0"
# pyRadPlan 0.5.0 fails with newer pydantic releases: pin the last one known to work.
PYDANTIC_VERSION="2.11.9"
PY="$VENV/bin/python"

die() {
    echo "setup_peer.sh: ERROR: $*" >&2
    exit "${2:-1}"
}

check_versions() {
    "$PY" - "$PYRADPLAN_VERSION" "$PYDANTIC_VERSION" <<'EOF'
import sys
from importlib.metadata import version

want_prp, want_pyd = sys.argv[1], sys.argv[2]
got_prp, got_pyd = version("pyradplan"), version("pydantic")
if (got_prp, got_pyd) != (want_prp, want_pyd):
    print(f"pyradplan {got_prp} (want {want_prp}), pydantic {got_pyd} (want {want_pyd})")
    sys.exit(1)
import pyRadPlan  # noqa: F401  (the import itself is the check)
EOF
}

if [[ -x "$PY" ]] && check_versions >/dev/null 2>&1; then
    echo "setup_peer.sh: $VENV already has pyradplan==$PYRADPLAN_VERSION, pydantic==$PYDANTIC_VERSION"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "interpreter '$PYTHON' not found (set PYTHON=...; pyRadPlan 0.5.0 needs Python >= 3.10)"

if [[ ! -x "$PY" ]]; then
    echo "setup_peer.sh: creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv $VENV' failed"
fi

echo "setup_peer.sh: installing pyradplan==$PYRADPLAN_VERSION pydantic==$PYDANTIC_VERSION into $VENV"
"$PY" -m pip install --quiet --upgrade pip || die "could not upgrade pip in $VENV"
"$PY" -m pip install --quiet "pyradplan==$PYRADPLAN_VERSION" "pydantic==$PYDANTIC_VERSION" psutil \
    || die "pip install of pyradplan==$PYRADPLAN_VERSION with pydantic==$PYDANTIC_VERSION failed (see pip output above)"

msg="$(check_versions 2>&1)" || die "install finished but the peer venv is not usable: $msg" 2
echo "setup_peer.sh: ready: $PY"
