#!/usr/bin/env bash
# The whole monitor on simulated hardware: installs what it needs, then runs `retroguard demo`.
# Extra arguments go to the demo, e.g. scripts/demo.sh --speed 4
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export RETROGUARD_DEBS="mosquitto:mosquitto mosquitto_pub:mosquitto-clients"
bash scripts/bootstrap.sh
exec .venv/bin/retroguard demo "$@"
