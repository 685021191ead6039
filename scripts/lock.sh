#!/usr/bin/env bash
# Regenerate constraints.txt, the lock file scripts/bootstrap.sh (and so scripts/test.sh)
# installs from: the newest versions pyproject.toml's bounds allow, resolved in a throw-away
# venv, pinned exactly. Afterwards run ./scripts/test.sh (bootstrap reinstalls when
# constraints.txt changes) and commit constraints.txt only when it is green.
#
#     bash scripts/lock.sh            # PYTHON=python3.11 to choose the interpreter
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q -e "${root}[dev]"  # -e: no build/ left in the tree
{
    echo "# The versions the test suite runs with: pip install -c constraints.txt -e '.[dev]'"
    echo "# (scripts/bootstrap.sh does). Made by scripts/lock.sh with $("$tmp/venv/bin/python" -V)."
    "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^retroguard[ =@]'
} >"$root/constraints.txt.new"
mv "$root/constraints.txt.new" "$root/constraints.txt"
echo "constraints.txt: $(grep -vc '^#' "$root/constraints.txt") pinned packages" >&2
