"""Is the sensor on a body? A streaming measure of postural sway, breathing and gait.

A living body is never still: standing, it sways about the ankles (tenths of
a degree at 0.1-1 Hz); sitting, it breathes (0.2-0.4 Hz); walking, it turns
the pelvis by degrees at the stride and step frequencies (1-2 Hz). A sensor
lying on the treadmill's console does not rotate at all, and a console shaken
by the belt's motor vibrates at tens of Hz with a tiny amplitude. So the body
signal is the *gyro's variation below 2 Hz within a block of a few seconds*:
the angular rate, low-passed at 2 Hz, its variance about the block's own mean,
summed over the three axes, as an RMS in °/s.

* The block's own mean is removed: the gyro's bias (degrees per second on an
  uncalibrated MPU-6050) and its slow drift with temperature count for
  nothing. Unlike a running high-pass, a block forgets the previous one: a
  sensor that falls off a walker reads quiet in the first block after it
  stops moving, not after a filter has forgotten the walk.
* Above 2 Hz is removed by two cascaded low-passes at the sample rate (-40 dB
  per decade: a 25 Hz motor vibration keeps 0.6 % of its amplitude) and a
  boxcar mean before the signal is decimated to 10 Hz (zero gain at 10, 20,
  30... Hz, the frequencies that would alias onto the block's mean), so a
  vibration cannot alias into the band.
* Rotation rather than acceleration: a vibrating console translates far more
  than it turns (0.05 g at 25 Hz is a 20 µm shake; rocking a console by that
  over a 0.3 m lever is 0.004°), while a standing body turns by tenths of a degree.

Cost on the real-time loop (docs/safety.md, "Sensor-worn check", has the
measurement): per sample and gyro axis, two multiply-adds and an add; every
20 samples, a handful more per axis; at the end of a block, one comparison.
No allocation: floats in slots, and the batch's filter state in locals.

The threshold and its margins (docs/safety.md has the measurements): a
resting MPU-6050 reads its noise density (0.005 °/s/√Hz, datasheet
PS-MPU-6000A rev 3.4), about 0.015 °/s here; the quietest real recording of
a person (KFall, sitting 30 s) 0.095 °/s, standing 0.155 °/s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.samples import ImuSample

DECIMATED_RATE_HZ = 10.0
"""The rate the block sums run at: 5 times the band's 2 Hz top."""
BAND_HIGH_HZ = 2.0
"""Above this a motor or a belt vibrating: not a body (sway, breathing, gait are below)."""
RECENT_S = 2.0
"""The window a reset press is also judged on: the last 2 s, ending at the press.

The last whole block can be the walk before the sensor came off (or the fall that threw it
off): judged on that alone, a press up to two blocks after the sensor went still armed the
belt. The same measure over the last 2 s shows a sensor gone still 2 s (and the low-passes'
tail) after it landed. Shorter windows cut the quietest stander's reading too close to the
threshold (sliding over every KFall standing recording: 0.047 °/s for 1 s, 0.076 for 1.5 s,
0.085 for 2 s, 0.117 for 3 s; docs/safety.md has the figures)."""


@dataclass(frozen=True, slots=True)
class WornReading:
    """What the check says now."""

    worn: bool
    """Settled, and the last block's body signal is at or above the threshold."""
    rotation_dps: float
    """The last block's body signal (°/s RMS about the block's mean, three axes, below 2 Hz)."""
    quiet_s: float
    """How long the body signal has been below the threshold (0 while worn)."""
    ready: bool
    """At least one whole block measured after the filters settled."""
    recent_dps: float = 0.0
    """The body signal over the last :data:`RECENT_S` (what a reset press is also judged on)."""


class WornCheck:
    """The gyro's variation below 2 Hz, block by block: a body moves, a console does not.

    The RMS is taken over consecutive blocks of ``block_s`` (3 s: a breath or
    two, half a period of the slowest sway), each on its own. :meth:`update_batch`
    takes the loop's batch (a few operations a sample); :attr:`worn`,
    :meth:`quiet_for` and :meth:`reading` read the state. Pure: the samples' own
    timestamps, no clock, no I/O.
    """

    __slots__ = (
        "_a1",
        "_a2",
        "_a3",
        "_b1",
        "_b2",
        "_b3",
        "_block_n",
        "_block_start",
        "_blocks",
        "_count",
        "_decimation",
        "_k_low",
        "_last_sq",
        "_m1",
        "_m2",
        "_m3",
        "_n",
        "_quiet_blocks",
        "_quiet_since",
        "_r1",
        "_r2",
        "_r3",
        "_recent1",
        "_recent2",
        "_recent3",
        "_recent_i",
        "_recent_n",
        "_recent_seen",
        "_s1",
        "_s2",
        "_s3",
        "_settle_n",
        "_started",
        "_sum",
        "_threshold_sq",
        "block_s",
        "recent_s",
        "threshold_dps",
    )

    def __init__(
        self,
        sample_rate_hz: float,
        *,
        threshold_dps: float,
        block_s: float = 3.0,
        settle_s: float = 1.0,
        recent_s: float = RECENT_S,
    ) -> None:
        if not (
            sample_rate_hz > 0
            and threshold_dps > 0
            and block_s > 0
            and settle_s > 0
            and recent_s > 0
        ):
            raise ValueError(
                "sample rate, threshold, block, settling and recent time must be positive"
            )
        self.threshold_dps = threshold_dps
        self.block_s = block_s
        self._threshold_sq = threshold_dps * threshold_dps
        self._decimation = max(1, round(sample_rate_hz / DECIMATED_RATE_HZ))
        slow_rate = sample_rate_hz / self._decimation
        self._block_n = max(1, round(block_s * slow_rate))
        self._settle_n = max(1, round(settle_s * slow_rate))
        # Never longer than a block: the recent window is to see what the blocks do not yet.
        self._recent_n = max(2, min(self._block_n, round(recent_s * slow_rate)))
        self._recent1 = [0.0] * self._recent_n
        self._recent2 = [0.0] * self._recent_n
        self._recent3 = [0.0] * self._recent_n
        self.recent_s = self._recent_n / slow_rate
        """The recent window as measured (``recent_s``, at most a block, in whole 0.1 s steps)."""
        self._k_low = 1.0 - math.exp(-2.0 * math.pi * BAND_HIGH_HZ / sample_rate_hz)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the first ``settle_s`` after this only settle the filters."""
        self._started = False
        self._count = 0
        self._n = 0
        self._a1 = self._a2 = self._a3 = 0.0
        self._b1 = self._b2 = self._b3 = 0.0
        self._r1 = self._r2 = self._r3 = 0.0
        self._m1 = self._m2 = self._m3 = 0.0
        self._s1 = self._s2 = self._s3 = 0.0
        self._sum = 0.0
        self._block_start = 0.0
        self._blocks = 0
        self._last_sq = 0.0
        self._quiet_since: float | None = None
        self._quiet_blocks = 0
        self._recent_i = 0
        self._recent_seen = 0

    def update(self, sample: ImuSample) -> None:
        """One sample (see :meth:`update_batch`, the loop's cheaper way in)."""
        self.update_batch((sample,))

    def update_batch(self, batch: Sequence[ImuSample]) -> None:
        """The loop's batch: two low-passes and a sum per gyro axis and sample, the rest
        every ``decimation`` samples. The filter state lives in locals for the batch."""
        if not batch:
            return
        if not self._started:
            first = batch[0]
            self._started = True
            self._block_start = first.t
            # Start the low-passes on the first reading, not at zero: a gyro bias of a few
            # °/s would otherwise ring through the band as a fake body for seconds.
            self._a1 = self._b1 = first.gx
            self._a2 = self._b2 = first.gy
            self._a3 = self._b3 = first.gz
        k = self._k_low
        a1, a2, a3 = self._a1, self._a2, self._a3
        b1, b2, b3 = self._b1, self._b2, self._b3
        s1, s2, s3 = self._s1, self._s2, self._s3
        count = self._count
        decimation = self._decimation
        for sample in batch:
            a1 += k * (sample.gx - a1)
            a2 += k * (sample.gy - a2)
            a3 += k * (sample.gz - a3)
            b1 += k * (a1 - b1)
            b2 += k * (a2 - b2)
            b3 += k * (a3 - b3)
            s1 += b1
            s2 += b2
            s3 += b3
            count += 1
            if count >= decimation:
                self._slow(s1 / count, s2 / count, s3 / count, sample.t)
                s1 = s2 = s3 = 0.0
                count = 0
        self._a1, self._a2, self._a3 = a1, a2, a3
        self._b1, self._b2, self._b3 = b1, b2, b3
        self._s1, self._s2, self._s3 = s1, s2, s3
        self._count = count

    def _slow(self, x1: float, x2: float, x3: float, t: float) -> None:
        """Every ``decimation`` samples: add to the block's sums; close it when it is full.

        ``x`` is the mean of the low-passed rates since the last call (a boxcar:
        zero gain at every multiple of the decimated rate, the frequencies that
        would alias onto 0 Hz), not one sample of them. Sums are taken from the
        block's first value, so a bias of degrees per second costs no precision.
        Once the filters settled, ``x`` also goes into the ring of the last :data:`RECENT_S`."""
        if self._blocks:
            i = self._recent_i
            self._recent1[i] = x1
            self._recent2[i] = x2
            self._recent3[i] = x3
            i += 1
            self._recent_i = 0 if i == self._recent_n else i
            self._recent_seen += 1
        if self._n == 0:
            self._r1, self._r2, self._r3 = x1, x2, x3
        d1 = x1 - self._r1
        d2 = x2 - self._r2
        d3 = x3 - self._r3
        self._m1 += d1
        self._m2 += d2
        self._m3 += d3
        self._sum += d1 * d1 + d2 * d2 + d3 * d3
        self._n += 1
        if self._n < (self._block_n if self._blocks else self._settle_n):
            return
        n = self._n
        # The variance about the block's own mean: the bias and its slow drift are not a body.
        mean_sq = self._m1 * self._m1 + self._m2 * self._m2 + self._m3 * self._m3
        variance = (self._sum - mean_sq / n) / n
        start = self._block_start
        self._sum = self._m1 = self._m2 = self._m3 = 0.0
        self._n = 0
        self._block_start = t
        self._blocks += 1
        if self._blocks < 2:
            return  # the first "block" (``settle_s``) only settles the low-passes
        self._last_sq = max(0.0, variance)
        if self._last_sq >= self._threshold_sq:
            self._quiet_since = None
            self._quiet_blocks = 0
        else:
            self._quiet_blocks += 1
            if self._quiet_since is None:
                self._quiet_since = start

    @property
    def blocks(self) -> int:
        """Blocks closed since the start or the last reset (the first only settled)."""
        return self._blocks

    @property
    def ready(self) -> bool:
        """A whole block has been measured after the one that settled the filters."""
        return self._blocks >= 2

    @property
    def rotation_dps(self) -> float:
        """The last block's body signal: the angular rate below 2 Hz, RMS about the block's
        mean, three axes (°/s)."""
        return math.sqrt(self._last_sq)

    @property
    def worn(self) -> bool:
        """Ready, and the last block's body signal is at or above the threshold."""
        return self._blocks >= 2 and self._quiet_since is None

    @property
    def recent_dps(self) -> float:
        """The body signal over the last :data:`RECENT_S` of samples, ending now (°/s; the
        same measure as a block's, about the window's own mean); 0 until the window is full.
        Computed when asked (a reset press, a report), not on the loop."""
        n = self._recent_n
        if self._recent_seen < n:
            return 0.0
        total = 0.0
        for ring in (self._recent1, self._recent2, self._recent3):
            ref = ring[0]  # as the blocks do: a bias of degrees per second costs no precision
            s = sq = 0.0
            for x in ring:
                d = x - ref
                s += d
                sq += d * d
            total += (sq - s * s / n) / n
        return math.sqrt(max(0.0, total))

    @property
    def recent_worn(self) -> bool:
        """The last :data:`RECENT_S` show a body (the window is full and reads at or above the
        threshold)."""
        return self._recent_seen >= self._recent_n and self.recent_dps >= self.threshold_dps

    @property
    def worn_now(self) -> bool:
        """What a reset press asks: the last block showed a body, and so did the last
        :data:`RECENT_S`. A sensor that fell off, or was put on the console, since the last
        block began fails the second within about 2 s of lying still, where the blocks alone
        took up to two blocks (3 to 6 s) to see it."""
        return self.worn and self.recent_worn

    @property
    def quiet_blocks(self) -> int:
        """Blocks measured quiet in a row in the current run (0 while worn): the check's own
        clock, a count of samples, where :meth:`quiet_for` reads the samples' timestamps."""
        return self._quiet_blocks

    def quiet_for(self, t: float) -> float:
        """Seconds since the first quiet block of the current run began (0 while worn)."""
        since = self._quiet_since
        return 0.0 if since is None else t - since

    def reading(self, t: float) -> WornReading:
        """The state as one record, for logs, events and the figures in docs."""
        return WornReading(
            self.worn, self.rotation_dps, self.quiet_for(t), self.ready, self.recent_dps
        )
