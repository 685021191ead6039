#!/usr/bin/env bash
# The whole test suite: lint, type-check, then pytest (real Mosquitto, SQLite, PostgreSQL, gpiozero
# mock pins).
# Installs what it needs (Debian packages, .venv); extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The fonts: the PDF report's (caregiver/report_pdf.py), named by a file each installs.
export RETROGUARD_DEBS="mosquitto:mosquitto mosquitto_pub:mosquitto-clients pg_ctlcluster:postgresql systemd-analyze:systemd shellcheck:shellcheck chromium:chromium espeak-ng:espeak-ng strace:strace /usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf:fonts-liberation2 /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core"
bash scripts/bootstrap.sh

# The SisFall subset lives beside the project (never in it); tests skip with a reason without it.
if [ -z "${RETROGUARD_SISFALL:-}" ] && [ -x ../shared/datasets/unpack ]; then
    RETROGUARD_SISFALL=$(../shared/datasets/unpack)
    export RETROGUARD_SISFALL
fi
# The KFall subset likewise (tests/kfall_support.py).
if [ -z "${RETROGUARD_KFALL:-}" ] && [ -x ../shared/datasets/unpack-kfall ]; then
    RETROGUARD_KFALL=$(../shared/datasets/unpack-kfall)
    export RETROGUARD_KFALL
fi

echo "== ruff" >&2
.venv/bin/ruff check core hal sim firmware tools caregiver launcher tests benchmarks scripts wiring
.venv/bin/ruff format --check core hal sim firmware tools caregiver launcher tests benchmarks scripts wiring
echo "== mypy --strict" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/python -m pytest "$@"
