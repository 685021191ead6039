"""What clears a part of the database the service goes on without
(:class:`caregiver.storage.SideFaults`): only what failed, seen to work again. A read does not
clear a failed write: a table that reads but refuses writes was said to work by the ticker's
read of it, then to fail at the next refused write, and the banner, ``/healthz`` and the log's
start and end lines came and went every few seconds. The store's side of it, on SQLite and
PostgreSQL with a real trigger refusing writes, is in ``tests/test_ingest_side_tables.py``."""

from __future__ import annotations

import logging

import pytest

from caregiver.storage import Part, SideFaults, Use

REFUSED = "caregiver database: writes refused"


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log lines of the parts failing (their start and their end), in order."""
    return [r.getMessage() for r in caplog.records if r.name == "caregiver.storage.side_faults"]


@pytest.fixture
def faults(caplog: pytest.LogCaptureFixture) -> SideFaults:
    caplog.set_level(logging.INFO, logger="caregiver.storage.side_faults")
    return SideFaults(clock=lambda: 1_765_000_000.0)


def test_a_failed_write_is_not_cleared_by_reads_only_by_a_write(
    faults: SideFaults, caplog: pytest.LogCaptureFixture
) -> None:
    changes: list[tuple[Part, ...]] = []
    faults.on_change = lambda: changes.append(tuple(f.part for f in faults.now()))
    faults.failed(Part.TELEMETRY, REFUSED, Use.WRITE)
    for _ in range(3):  # the ticker's looks at a table that reads
        faults.works(Part.TELEMETRY, Use.READ)
        faults.failed(Part.TELEMETRY, REFUSED, Use.WRITE)  # the next telemetry refused
    assert [f.part for f in faults.now()] == [Part.TELEMETRY]
    assert faults.unread() == ()  # nothing for a read to clear
    assert changes == [(Part.TELEMETRY,)]
    said = _said(caplog)
    assert len(said) == 1 and said[0].startswith("the treadmills' figures cannot be stored")

    faults.works(Part.TELEMETRY, Use.WRITE)
    assert faults.now() == () and not faults.failing
    assert changes == [(Part.TELEMETRY,), ()]
    assert _said(caplog)[1:] == ["telemetry works again: the treadmills' figures can be stored"]


def test_a_failed_read_is_cleared_by_a_read(
    faults: SideFaults, caplog: pytest.LogCaptureFixture
) -> None:
    faults.failed(Part.WALKERS, "caregiver database: no such table: device_walkers", Use.READ)
    assert faults.unread() == (Part.WALKERS,)
    (fault,) = faults.now()
    assert fault.uses == {Use.READ}
    assert fault.fault == "caregiver database: no such table: device_walkers"
    faults.works(Part.WALKERS, Use.WRITE)  # a roster stored says nothing of reading them
    assert faults.unread() == (Part.WALKERS,)
    faults.works(Part.WALKERS, Use.READ)
    assert faults.now() == ()
    assert len(_said(caplog)) == 2


def test_a_part_whose_read_and_write_failed_is_said_until_both_work(
    faults: SideFaults, caplog: pytest.LogCaptureFixture
) -> None:
    """A recordings table missing: the fall's recording refused, then its page's read of it.
    Put back, the ticker's read clears the read; the part is said until a recording stores.
    One line at its start, one at its end, whatever came between."""
    faults.failed(Part.RECORDINGS, "caregiver database: no such table: recordings", Use.WRITE)
    faults.failed(Part.RECORDINGS, "caregiver database: another fault", Use.READ)
    (fault,) = faults.now()
    assert fault.uses == {Use.READ, Use.WRITE}
    assert fault.fault == "caregiver database: no such table: recordings"  # the first's
    faults.works(Part.RECORDINGS, Use.READ)
    assert faults.unread() == ()
    (fault,) = faults.now()
    assert fault.uses == {Use.WRITE} and fault.since == 1_765_000_000.0
    assert len(_said(caplog)) == 1
    faults.works(Part.RECORDINGS, Use.WRITE)
    assert faults.now() == ()
    said = _said(caplog)
    assert len(said) == 2 and said[1].startswith("recordings works again")
