"""The sensor-worn check: decisions that hand mutation (mut33) found no test noticing.

Safety issue 15 item 1 rests on :class:`firmware.detection.worn.WornCheck` telling a body
(sway, breathing, gait) from a sensor lying still or on a vibrating console: arming is
refused unless the last block *and* the last 2 s show a body, and while ARMED a sensor that
stops looking worn trips like a lost IMU (docs/safety.md, "Sensor-worn check"). The check is
pure (samples in, a reading out), so these tests feed it synthesised gyro samples at 200 Hz;
where a limit must be met exactly, the threshold is the check's own reading of the same
samples. (The relay's contact sense, :mod:`firmware.contact`, and the systemd watchdog hook,
:mod:`firmware.watchdog`, went through the same pass: every mutant was killed by the tests
beside them, in tests/test_safety.py, tests/test_loop_shell_mutants.py and
tests/test_watchdog.py.)

Survivors left alone, each equivalent (no input tells it from the original):

* ``self._block_start = first.t`` at the first sample set to 0.0: that start is the
  settling step's, which closes before any quiet run can begin, and the next block's start
  is the settling step's last sample whatever it was.
* ``max(0.0, variance)`` dropped in ``_slow``: unreachable. The block's sums are taken from
  its first value, so ``n`` times the variance is at least ``mean ** 2`` (the first value
  lies that far from the mean), hence at least ``1 / (n + 1)`` of the sum of squares, while
  the rounding of that sum is of order ``n * 2 ** -53`` of it (``n`` is 30 at the shipped 3 s
  block, 100 at the 10 s the config allows): the difference cannot come out negative.
"""

from __future__ import annotations

import math

import pytest

from core.samples import ImuSample
from firmware.detection.worn import WornCheck
from tests.test_worn import THRESHOLD, swaying


def test_the_last_seconds_are_never_shorter_than_two_decimated_steps() -> None:
    """One decimated value has no variation about its own mean: a window of one would read
    every body as 0 deg/s, and no press would ever arm. So the window is at least two steps
    (0.2 s at the check's 10 Hz), whatever ``recent_s`` asks for (mutant: ``max(1, ...)`` for
    ``max(2, ...)``, a window of one for ``recent_s=0.1``)."""
    check = WornCheck(200.0, threshold_dps=THRESHOLD, block_s=3.0, recent_s=0.1)
    assert check.recent_s == 0.2
    brisk = [s._replace(gx=10 * s.gx, gy=10 * s.gy, gz=10 * s.gz) for s in swaying(0.0, 6.0)]
    check.update_batch(brisk)  # 20 deg/s at 1 Hz: two steps 0.1 s apart differ by degrees/s
    assert check.worn and check.recent_dps > THRESHOLD
    assert check.worn_now


def _measured(samples: list[ImuSample], threshold_dps: float) -> WornCheck:
    check = WornCheck(200.0, threshold_dps=threshold_dps, block_s=3.0)
    check.update_batch(samples)
    return check


def test_a_block_reading_exactly_the_threshold_shows_a_body() -> None:
    """At or above the threshold is a body (the check's docstrings): a block whose signal is
    the threshold to the last bit reads worn, and with the threshold a bit above, not worn
    (mutant: ``>`` for ``>=`` in ``_slow``). The threshold is the block's own reading, taken
    from a check fed the same samples; a sway amplitude is picked whose squared reading is
    exactly the square of its square root, so the comparison is met exactly."""
    for scale in (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7):
        samples = [
            s._replace(gx=scale * s.gx, gy=scale * s.gy, gz=scale * s.gz) for s in swaying(0.0, 4.0)
        ]
        probe = _measured(samples, THRESHOLD)
        exact = probe.rotation_dps
        if exact * exact == probe._last_sq:
            break
    else:
        raise AssertionError("no sway amplitude reads a threshold met exactly")
    assert probe.ready
    assert _measured(samples, exact).worn
    assert not _measured(samples, math.nextafter(exact, math.inf)).worn


def test_the_last_seconds_reading_exactly_the_threshold_show_a_body() -> None:
    """The same "at or above" for the last 2 s a reset press is judged on (mutant: ``>`` for
    ``>=`` in ``recent_worn``): the threshold is their own reading."""
    samples = swaying(0.0, 4.0)
    exact = _measured(samples, THRESHOLD).recent_dps
    assert exact > THRESHOLD
    assert _measured(samples, exact).recent_worn
    assert not _measured(samples, math.nextafter(exact, math.inf)).recent_worn


def test_the_last_seconds_take_nothing_from_the_settling_second() -> None:
    """The settling time only settles the low-passes (their start-up is no body): the window
    of the last seconds fills from the first measured block on, and reads 0 until it is full
    of measured values. With a settling as long as a block, 2.5 s of sway leave the check
    unready and the window empty (mutant: the settling values put in the window too, which
    then read a body before anything was measured)."""
    check = WornCheck(200.0, threshold_dps=THRESHOLD, block_s=3.0, settle_s=3.0)
    check.update_batch(swaying(0.0, 2.5))
    assert not check.ready
    assert check.recent_dps == 0.0 and not check.recent_worn
    assert check.reading(2.5).recent_dps == 0.0
    check.update_batch(swaying(2.5, 3.0))  # settled at 3 s; the window full 2 s later
    assert check.blocks == 1 and check.recent_dps > THRESHOLD


def test_an_empty_batch_before_the_first_sample_changes_nothing() -> None:
    """A batch with no samples (a read that returned none) is no start: the check begins at
    the first real sample, its timestamp and its bias, as a new one does (mutant: the empty
    batch not turned away, which failed on a batch with no first sample)."""
    check = WornCheck(200.0, threshold_dps=THRESHOLD, block_s=3.0)
    check.update_batch(())
    fresh = WornCheck(200.0, threshold_dps=THRESHOLD, block_s=3.0)
    samples = swaying(10.0, 4.0)
    for c in (check, fresh):
        c.update_batch(samples)
    assert check.reading(14.0) == fresh.reading(14.0)
    assert check.ready and check.worn


@pytest.mark.parametrize("bias", [4.3, -3.7, 7.77, 1999.9])
def test_a_still_sensor_reads_exactly_nothing_whatever_its_bias(bias: float) -> None:
    """A block's sums are taken from its first value, so a bias of degrees per second costs no
    precision: a sensor that does not turn reads exactly 0 deg/s, the block and the last
    seconds alike. Summed from zero, the squares of a 7.77 deg/s bias and the square of their
    sum no longer cancel to the last bit, and a still sensor read a body signal of 2e-7 deg/s
    (mutant: the block's reference never taken)."""
    n = 1000  # 5 s at 200 Hz: the settling second, a block and the last 2 s
    samples = [
        ImuSample((i + 1) / 200.0, 0.0, 0.0, 1.0, bias, -0.75 * bias, 0.5 * bias) for i in range(n)
    ]
    check = _measured(samples, THRESHOLD)
    assert check.ready and not check.worn
    assert check.rotation_dps == 0.0 and check.recent_dps == 0.0


def test_a_press_is_judged_on_the_last_block_as_well_as_on_the_last_seconds() -> None:
    """A reset press needs both: the last block showed a body, and so did the last 2 s (mutant:
    the last seconds alone). Before the first block is measured the last 2 s can be full of
    sway, yet nothing is measured on a block: no verdict, no arming. And a sensor that lay
    still for a whole block and is then swung by hand for 2 s is not a walker that wore it."""
    check = WornCheck(200.0, threshold_dps=THRESHOLD, block_s=3.0)
    check.update_batch(swaying(0.0, 3.5))  # settled at 1 s; the last 2 s all sway
    assert check.recent_worn and not check.ready
    assert not check.worn_now
    lying = WornCheck(200.0, threshold_dps=THRESHOLD, block_s=3.0)
    lying.update_batch(
        [ImuSample((i + 1) / 200.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5) for i in range(800)]
    )  # the settling second and a block of a still sensor
    assert lying.ready and not lying.worn
    lying.update_batch(swaying(4.0, 2.5))  # swung for 2.5 s, inside the next block
    assert lying.blocks == 2 and lying.recent_worn
    assert not lying.worn_now
