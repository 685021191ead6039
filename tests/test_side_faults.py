"""What clears a part of the database the service goes on without
(:class:`caregiver.storage.SideFaults`): only what failed, seen to work again. A read does not
clear a failed write: a table that reads but refuses writes was said to work by the ticker's
read of it, then to fail at the next refused write, and the banner, ``/healthz`` and the log's
start and end lines came and went every few seconds. The store's side of it, on SQLite and
PostgreSQL with a real trigger refusing writes, is in ``tests/test_ingest_side_tables.py``."""

from __future__ import annotations

import logging

import pytest

from caregiver.storage import Part, SideFaults, Table, Use

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
    faults.failed(Part.TELEMETRY, REFUSED, Use.WRITE, Part.TELEMETRY.tables)
    for _ in range(3):  # the ticker's looks at a table that reads
        faults.works(Part.TELEMETRY, Use.READ, Part.TELEMETRY.tables)
        # the next telemetry refused
        faults.failed(Part.TELEMETRY, REFUSED, Use.WRITE, Part.TELEMETRY.tables)
    assert [f.part for f in faults.now()] == [Part.TELEMETRY]
    assert faults.unread() == ()  # nothing for a read to clear
    assert changes == [(Part.TELEMETRY,)]
    said = _said(caplog)
    assert len(said) == 1 and said[0].startswith("the treadmills' figures cannot be stored")

    faults.works(Part.TELEMETRY, Use.WRITE, Part.TELEMETRY.tables)
    assert faults.now() == () and not faults.failing
    assert changes == [(Part.TELEMETRY,), ()]
    assert _said(caplog)[1:] == ["telemetry works again: the treadmills' figures can be stored"]


def test_a_failed_read_is_cleared_by_a_read(
    faults: SideFaults, caplog: pytest.LogCaptureFixture
) -> None:
    faults.failed(
        Part.WALKERS,
        "caregiver database: no such table: device_walkers",
        Use.READ,
        Part.WALKERS.tables,
    )
    assert faults.unread() == (Part.WALKERS,)
    (fault,) = faults.now()
    assert fault.uses == {Use.READ}
    assert fault.fault == "caregiver database: no such table: device_walkers"
    # a roster stored says nothing of reading them
    faults.works(Part.WALKERS, Use.WRITE, Part.WALKERS.tables)
    assert faults.unread() == (Part.WALKERS,)
    faults.works(Part.WALKERS, Use.READ, Part.WALKERS.tables)
    assert faults.now() == ()
    assert len(_said(caplog)) == 2


def test_a_part_whose_read_and_write_failed_is_said_until_both_work(
    faults: SideFaults, caplog: pytest.LogCaptureFixture
) -> None:
    """A recordings table missing: the fall's recording refused, then its page's read of it.
    Put back, the ticker's read clears the read; the part is said until a recording stores.
    One line at its start, one at its end, whatever came between."""
    faults.failed(
        Part.RECORDINGS,
        "caregiver database: no such table: recordings",
        Use.WRITE,
        Part.RECORDINGS.tables,
    )
    faults.failed(
        Part.RECORDINGS, "caregiver database: another fault", Use.READ, Part.RECORDINGS.tables
    )
    (fault,) = faults.now()
    assert fault.uses == {Use.READ, Use.WRITE}
    assert fault.fault == "caregiver database: no such table: recordings"  # the first's
    faults.works(Part.RECORDINGS, Use.READ, Part.RECORDINGS.tables)
    assert faults.unread() == ()
    (fault,) = faults.now()
    assert fault.uses == {Use.WRITE} and fault.since == 1_765_000_000.0
    assert len(_said(caplog)) == 1
    faults.works(Part.RECORDINGS, Use.WRITE, Part.RECORDINGS.tables)
    assert faults.now() == ()
    said = _said(caplog)
    assert len(said) == 2 and said[1].startswith("recordings works again")


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_part_is_said_while_any_of_its_tables_fails_as_its_oldest_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The progression's stages refused, then its weeks' counts: a week's count written
    clears the counts only, and the part is said until a stage is written too, in the words
    and since the time of its oldest table still failing. One line at its start, one at its
    end; the banner is told when what it says changes (its oldest table failing another),
    not when a table fails or works beside an older one."""
    clock = _Clock(1000.5)
    faults = SideFaults(clock)
    caplog.set_level(logging.INFO, logger="caregiver.storage.side_faults")
    told: list[tuple[str, float] | None] = []
    faults.on_change = lambda: told.append(next(((f.fault, f.since) for f in faults.now()), None))
    faults.failed(Part.PROGRESS, "stages refused", Use.WRITE, (Table.WALKER_STAGES,))
    clock.now = 1060.25
    faults.failed(Part.PROGRESS, "counts refused", Use.WRITE, (Table.PRESCRIBED_WEEKS,))
    assert told == [("stages refused", 1000.5)]

    faults.works(Part.PROGRESS, Use.WRITE, (Table.PRESCRIBED_WEEKS,))  # a count written
    (fault,) = faults.now()
    assert fault.failing == {(Table.WALKER_STAGES, Use.WRITE)}
    assert (fault.fault, fault.since) == ("stages refused", 1000.5)
    assert told == [("stages refused", 1000.5)]

    faults.failed(Part.PROGRESS, "counts refused", Use.WRITE, (Table.PRESCRIBED_WEEKS,))
    faults.works(Part.PROGRESS, Use.WRITE, (Table.WALKER_STAGES,))  # a stage written
    (fault,) = faults.now()  # the counts' failure, the oldest now
    assert (fault.fault, fault.since) == ("counts refused", 1060.25)
    assert told[-1] == ("counts refused", 1060.25)
    assert len(_said(caplog)) == 1

    faults.works(Part.PROGRESS, Use.READ, (Table.PRESCRIBED_WEEKS,))  # a read: not a write
    faults.works(Part.SESSIONS, Use.WRITE, (Table.PRESCRIBED_WEEKS,))  # another part's
    assert [f.part for f in faults.now()] == [Part.PROGRESS]
    faults.works(Part.PROGRESS, Use.WRITE, (Table.PRESCRIBED_WEEKS, Table.WALKER_STAGES))
    assert faults.now() == () and told[-1] is None
    said = _said(caplog)
    assert len(said) == 2 and said[1].startswith("progress works again")


def test_a_failure_naming_no_table_is_every_table_of_its_part(faults: SideFaults) -> None:
    """A caller that names none is never dropped unsaid: it is all of the part's tables."""
    faults.failed(Part.COMMANDS, REFUSED, Use.WRITE, ())
    (fault,) = faults.now()
    assert fault.tables == set(Part.COMMANDS.tables)
    faults.works(Part.COMMANDS, Use.WRITE, ())  # nor is a success naming none a clear
    assert [f.part for f in faults.now()] == [Part.COMMANDS]


def test_a_read_probe_clears_only_the_tables_whose_read_failed(faults: SideFaults) -> None:
    """What the housekeeping look reads: each table a read of which failed, by part."""
    faults.failed(Part.WALKERS, "gone", Use.READ, (Table.DEVICE_WALKERS,))
    faults.failed(Part.SESSIONS, REFUSED, Use.WRITE, (Table.WALK_SESSIONS,))
    assert faults.unread_tables() == ((Part.WALKERS, Table.DEVICE_WALKERS),)
    assert faults.unread() == (Part.WALKERS,)


def test_the_log_and_the_banner_say_which_alerts_are_stored_by_one_rule(
    faults: SideFaults, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's line of a part starting to fail and the banner's, ``/healthz``'s and the
    health message's words (``still_stored``) say which alerts are still stored by one rule:
    the log had a copy of its own, which a change of the rule would have left saying the old
    words. Here the rule is made to say a marker, and both say it."""
    from caregiver.storage import SideFault, side_faults, still_stored

    monkeypatch.setattr(side_faults, "alerts_stored_beside", lambda parts: f"{list(parts)} only")
    faults.failed(Part.ALERTS, "an alert refused", Use.WRITE, ())
    (said,) = _said(caplog)
    assert ": [<Part.ALERTS: 'alerts'>] only are still stored and notified, but " in said
    fault = SideFault(Part.TELEMETRY, "refused", 0.0)
    assert still_stored((fault,)) == "[<Part.TELEMETRY: 'telemetry'>] only"
