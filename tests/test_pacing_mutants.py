"""Interrupt pacing: decisions that hand mutation (mut31) found no test noticing.

:mod:`firmware.pacing` decides only *when* the loop reads the IMU, but the rules it keeps are
documented ones (docs/safety.md, "Not a fault: a dead IMU data-ready line"): 0.25 s of samples
without an edge and the loop polls; a line that pulses as long again paces the reads again;
the third time it goes quiet within an hour of pulses the loop polls for good. These tests
drive :class:`firmware.pacing.InterruptPacing` on the scripted line and IMU of
:mod:`tests.test_imu_pacing` (pulse counts in, the pacing's choices out), at the documented
figures: 200 Hz, so 50 samples are the quarter second and 720 000 pulses the hour; the one
that opens the pacing from the config does so on a gpiozero mock pin nobody drives.

Survivors left alone, each equivalent (no input tells it from the original):

* ``max(1, ...)`` in :func:`dead_after_samples` a step down (the config refuses a sample rate
  that is not positive, and a positive one's quarter second rounds up to at least 1).
* ``imu is not self._imu`` always true (the driver's kind is looked at again every read:
  the same answer, a little more work).
* ``line is not None and`` dropped in ``_fall_back`` (it is called only while a line paces
  the reads).
* ``<`` for ``<=`` in :func:`samples_per_wake` (the bound carries a relative slack of 1e-9,
  so no pair of float settings lands on it exactly).
"""

from __future__ import annotations

import dataclasses

from core.clock import SimClock
from firmware.pacing import InterruptPacing, open_pacing
from hal.config import GpioConfig, ImuConfig
from sim.pins import ClockedMockFactory
from tests.test_imu_pacing import INT_PIN, ScriptedImu, ScriptedLine, scripted_pacing

DEAD_AFTER = 50
"""A quarter second of samples at 200 Hz."""

HOUR = 720_000
"""An hour of pulses at 200 Hz (docs/safety.md: "within an hour of pulses")."""


def _quiet_spell(pacing: InterruptPacing, line: ScriptedLine, imu: ScriptedImu) -> None:
    """The line gives no edge for a quarter second of samples (two a read): the loop polls."""
    assert pacing.mode == "interrupt"
    line._counts = iter([line.edges] * (DEAD_AFTER // imu.per_read))
    for _ in range(DEAD_AFTER // imu.per_read):
        pacing.read(imu)
    assert pacing.mode == "poll"


def _back(pacing: InterruptPacing, line: ScriptedLine, imu: ScriptedImu) -> None:
    """While the loop polls, the line pulses as long as it took to call it dead: it paces the
    reads again."""
    line.edges += DEAD_AFTER
    pacing.read(imu)
    assert pacing.mode == "interrupt"


def _pulses(pacing: InterruptPacing, line: ScriptedLine, imu: ScriptedImu, count: int) -> None:
    """The line pulses ``count`` times, seen at one read."""
    line._counts = iter([line.edges + count])
    pacing.read(imu)


def test_the_third_quiet_spell_within_an_hour_of_pulses_polls_for_good() -> None:
    """docs/safety.md: "the third time it goes quiet within an hour of pulses the monitor polls
    for good". Spells a pulse short of an hour apart add up: the second leaves the line
    watched, the third lets it go (mutants: ``MAX_FALLBACKS`` a step either way; the hour
    half as long; the hour counted in samples without the quarter second's rate, a quarter
    of an hour at 200 Hz)."""
    line, imu = ScriptedLine([]), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=DEAD_AFTER)
    _quiet_spell(pacing, line, imu)
    _back(pacing, line, imu)
    _pulses(pacing, line, imu, HOUR - DEAD_AFTER - 1)  # a pulse short of an hour since it went
    _quiet_spell(pacing, line, imu)
    assert pacing.fallbacks == 2 and not line.closed  # watched: it may come back
    _back(pacing, line, imu)
    _pulses(pacing, line, imu, HOUR - DEAD_AFTER - 1)
    _quiet_spell(pacing, line, imu)
    assert pacing.fallbacks == 3 and line.closed
    ok, detail = pacing.check()
    assert not ok and detail.endswith("the line went quiet 3 times, so a loose connection")


def test_a_line_that_had_pulsed_is_polled_until_it_pulses_again_for_a_quarter_second() -> None:
    """The line goes quiet after thousands of pulses: the loop polls until it has pulsed a
    quarter second's worth *since* (mutant: the pulses counted from none, not from where the
    line went quiet: the next read took the old pulses for new ones and waited on the dead
    line again, every other read)."""
    line, imu = ScriptedLine([]), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=DEAD_AFTER)
    _pulses(pacing, line, imu, 5000)
    _quiet_spell(pacing, line, imu)
    waits = len(line.waits)
    pacing.read(imu)
    assert pacing.mode == "poll" and len(line.waits) == waits
    line.edges += DEAD_AFTER - 1
    pacing.read(imu)
    assert pacing.mode == "poll" and len(line.waits) == waits
    line.edges += 1
    pacing.read(imu)
    assert pacing.mode == "interrupt"


def test_a_line_back_from_a_quiet_spell_has_a_quarter_second_again_before_the_next() -> None:
    """Once back, the line gets the whole quarter second of samples without an edge that a
    fresh one gets (mutant: the samples counted in the spell kept at the resume: the first
    wait that timed out, a scheduling hiccup, sent the loop back to polling and counted a
    second spell toward polling for good)."""
    line, imu = ScriptedLine([]), ScriptedImu(per_read=2)
    pacing = scripted_pacing(line, dead_after=DEAD_AFTER)
    _quiet_spell(pacing, line, imu)
    _back(pacing, line, imu)
    line._counts = iter([line.edges] * (DEAD_AFTER // 2 - 1))
    for _ in range(DEAD_AFTER // 2 - 1):  # 48 samples without an edge
        pacing.read(imu)
        assert pacing.mode == "interrupt"
    assert pacing.fallbacks == 1


def test_a_dead_line_at_100_hz_is_polled_after_a_quarter_second_of_its_samples() -> None:
    """The quarter second is the configured rate's: at 100 Hz, 25 samples (mutant: the
    pacing opened with 200 Hz's 50 whatever the rate, so a slower IMU waited half a second
    on a dead line)."""
    clock = SimClock()
    factory = ClockedMockFactory(clock)  # nothing drives the INT pin: a cut wire
    imu = dataclasses.replace(ImuConfig(), sample_rate_hz=100.0, pacing="interrupt")
    pacing = open_pacing(imu, GpioConfig(), factory, clock, 0.025)
    assert isinstance(pacing, InterruptPacing)
    try:
        one_a_read = ScriptedImu(per_read=1)
        for _ in range(24):
            pacing.read(one_a_read)
        assert pacing.mode == "interrupt"
        pacing.read(one_a_read)  # the 25th sample
        assert pacing.mode == "poll"
        ok, detail = pacing.check()
        said = f"GPIO{INT_PIN} gave no data-ready edge while the IMU delivered 25 samples"
        assert not ok and said in detail
    finally:
        pacing.close()
