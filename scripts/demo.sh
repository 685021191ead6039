#!/usr/bin/env bash
# The whole monitor on simulated hardware: installs what it needs, then runs `retroguard demo`.
# Extra arguments go to the demo, e.g. scripts/demo.sh --speed 4
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# --help installs nothing: the bootstrap (apt-get, a venv, pip) is minutes and sudo, to read
# a page of options. The demo's own options come from the venv's retroguard once there is one.
for arg in "$@"; do
    case $arg in
        -h | --help)
            echo "usage: scripts/demo.sh [DEMO OPTIONS]"
            echo "Runs the whole monitor on simulated hardware (.venv/bin/retroguard demo), after"
            echo "making .venv/ and installing what it needs, Debian packages included (mosquitto,"
            echo "fonts; with sudo when not root). The options go to the demo."
            if [ -x .venv/bin/retroguard ]; then
                echo
                exec .venv/bin/retroguard demo --help
            fi
            echo "Its options (--speed N, --keep, --no-live, ...) are listed here once a first run"
            echo "has made .venv/."
            exit 0
            ;;
    esac
done
# The fonts: the PDF report's (caregiver/report_pdf.py), named by a file each installs.
export RETROGUARD_DEBS="mosquitto:mosquitto mosquitto_pub:mosquitto-clients /usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf:fonts-liberation2 /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core"
bash scripts/bootstrap.sh
exec .venv/bin/retroguard demo "$@"
