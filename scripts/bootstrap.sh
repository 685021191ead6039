#!/usr/bin/env bash
# Make .venv/ with RetroGuard and its dev tools, installing Debian packages first when missing.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it only does what is missing).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

need_debs=()
# RETROGUARD_DEBS: space-separated "command:package" pairs, e.g. "mosquitto:mosquitto"; the
# package is installed when the command is not found. A package with no command (a font) is
# named by a file it installs instead: "/usr/share/fonts/.../X.ttf:fonts-x".
for pair in ${RETROGUARD_DEBS:-}; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    case $cmd in
        /*) [ -e "$cmd" ] || need_debs+=("$pkg") ;;
        *) command -v "$cmd" >/dev/null 2>&1 || need_debs+=("$pkg") ;;
    esac
done
if [ ${#need_debs[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "bootstrap: installing Debian packages: ${need_debs[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >&2
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# constraints.txt pins every package to the version the tests ran with (scripts/lock.sh makes it).
# The install also builds the compiled detector (setup.py) from firmware/detection/retro.py and
# rules.py: after an edit of either it is stale, and the monitor runs the pure-Python one
# (firmware.detection.factory refuses a copy whose digest differs), so an edit reinstalls.
stamp=.venv/.retroguard-installed
stale=""
for source in pyproject.toml constraints.txt setup.py firmware/detection/retro.py \
    firmware/detection/rules.py; do
    if [ "$source" -nt "$stamp" ]; then
        stale=$source
    fi
done
if [ ! -e "$stamp" ] || [ -n "$stale" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >&2
    # -c does not reach the isolated build environment (mypyc, setup.py): --build-constraint
    # pins the mypy the detector is compiled with to the locked one too.
    .venv/bin/python -m pip install -q -c constraints.txt --build-constraint constraints.txt \
        -e ".[dev]" >&2
    touch "$stamp"
fi
