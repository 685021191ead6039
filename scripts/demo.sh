#!/usr/bin/env bash
# The whole monitor on simulated hardware: installs what it needs, then runs `retroguard demo`.
# Extra arguments go to the demo, e.g. scripts/demo.sh --speed 4
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The fonts: the PDF report's (caregiver/report_pdf.py), named by a file each installs.
export RETROGUARD_DEBS="mosquitto:mosquitto mosquitto_pub:mosquitto-clients /usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf:fonts-liberation2 /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core"
bash scripts/bootstrap.sh
exec .venv/bin/retroguard demo "$@"
