"""The physio's PDF report: its size and how long one takes to draw.

One full page (:func:`tests.caregiver_support.physio_month`'s four weeks from a real SQLite
store, two incidents) drawn ``--runs`` times for each walker name given, with the median
wall time and the PDF's size. The Unicode font (caregiver/report_pdf.py) is embedded as a
subset of the glyphs the page uses, so its cost is tens of kB and the font file's parsing.

    .venv/bin/python benchmarks/report_pdf.py [--runs 20] [--name NAME ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, benchmarks/ is first on sys.path and its caregiver.py would shadow the
# ``caregiver`` package; the project goes first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from caregiver.progress import parse_summary  # noqa: E402
from caregiver.report import make_report  # noqa: E402
from caregiver.report_pdf import report_pdf  # noqa: E402
from caregiver.storage import Incident, Store  # noqa: E402
from caregiver.trends import measures_of  # noqa: E402
from firmware.session.record import session_payload  # noqa: E402
from tests.caregiver_support import physio_month, received  # noqa: E402

DEVICE = "treadmill-1"
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NOW = (MONDAY + dt.timedelta(weeks=3, days=5)).timestamp()


def _incident(opened: dt.datetime) -> Incident:
    return Incident(
        id=f"{int(opened.timestamp()):032x}", device_id=DEVICE, severity="fall",
        status="closed", opened_at=opened.timestamp(), opened_wall=opened.isoformat(),
        first_event_id="e" * 32, last_event_at=opened.timestamp(),
        closed_at=opened.timestamp() + 60, closed_by="ann", closed_via="dashboard",
        closed_severity="fall",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--name", action="append", help="walker name (repeatable)")
    args = parser.parse_args(argv)
    names: list[str] = args.name or ["Anna", "Ζωή Παπαδοπούλου", "Łukasz Żółć"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "caregiver.db"))
        for record in physio_month(DEVICE, MONDAY):
            row, problem = parse_summary(received(record), DEVICE)
            assert row is not None, problem
            store.record_walk_session(row, session_payload(record), NOW)
        sessions = store.walk_sessions(DEVICE)
        measures = measures_of(store.walk_session_payloads(DEVICE))
        store.close()
    incidents = [_incident(MONDAY + dt.timedelta(days=d)) for d in (3, 9)]
    print(f"{'walker':<24} {'size kB':>8} {'median ms':>10} {'first ms':>9}")
    for name in names:
        report = make_report(DEVICE, name, sessions, measures, incidents, dt.UTC, NOW)
        times = []
        size = 0
        for _ in range(args.runs):
            start = time.perf_counter()
            size = len(report_pdf(report))
            times.append(time.perf_counter() - start)
        print(
            f"{name:<24} {size / 1000:>8.1f} {statistics.median(times) * 1000:>10.1f} "
            f"{times[0] * 1000:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
