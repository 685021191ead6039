"""What evaluating one recording yields: :class:`FileResult`, the small picklable record a
worker process returns and every figure, table row and CSV line is made from.

Apart from :mod:`tools.evaluate.scoring` so that the figures and the report depend on the
record only, not on how it is produced.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.datasets import Activity

ONSET_TOLERANCE_S = 0.2
"""How far before a *video-labelled* onset a trip still counts as the same
fall in the tolerant onset figure (``tripped_near_onset``). The onset is a
person's judgement of the frame in which the fall began; the detector often
sees the body leave its course a few tens of ms sooner (KFall: most trips
before onset in slips and falls while sitting down come 5-200 ms before the
label), and its stumble refractory then keeps the fall from tripping again
inside [onset, impact). Reported beside the strict figure, never instead."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """Everything the summary needs from one recording (picklable, small)."""

    path: str
    code: str
    subject: str | None
    label: str
    tuning: bool
    duration_s: float
    impact_t: float | None
    first_trip_t: float | None
    first_trip_kind: str | None
    first_fall_t: float | None
    trips: int
    no_recovery: bool
    error: str | None = None
    dataset: str = "trace"
    """Where the recording comes from: ``sisfall``, ``kfall`` or ``trace``."""
    group: str = Activity.OTHER_ADL.value
    """Its :class:`~tools.datasets.Activity` group (from the task table)."""
    backward: bool = False
    """A backward fall."""
    onset_t: float | None = None
    """Labelled fall onset, when the recording has one."""
    trips_before_onset: int = 0
    """Trips (STUMBLE or FALL) before the labelled onset: while the person was
    still doing whatever preceded the fall (the pre-impact literature counts
    those as false alarms, not as detections)."""
    first_trip_after_onset_t: float | None = None
    """The first trip at or after the labelled onset."""
    first_trip_reason: str | None = None
    """The first trip's reason as the monitor logs and reports it (which rule, with its
    figures: "loss of balance: down 0.62 m/s x tilt 34 deg"), so a per-file table says why a
    recording tripped without replaying it."""

    @property
    def lead_ms(self) -> float | None:
        """Trip-to-impact time, when the first trip came before the impact."""
        if self.first_trip_t is None or self.impact_t is None:
            return None
        lead = self.impact_t - self.first_trip_t
        return lead * 1000.0 if lead > 0 else None

    @property
    def tripped_in_fall(self) -> bool:
        """A trip between the labelled onset and the impact (onset-labelled falls)."""
        t = self.first_trip_after_onset_t
        return t is not None and self.impact_t is not None and t < self.impact_t

    @property
    def tripped_near_onset(self) -> bool:
        """Tripped in the fall, or first tripped at most ``ONSET_TOLERANCE_S``
        before its labelled onset (and not earlier): the same fall seen a
        little before the video label."""
        if self.tripped_in_fall:
            return True
        t, onset = self.first_trip_t, self.onset_t
        return t is not None and onset is not None and onset - ONSET_TOLERANCE_S <= t < onset

    @property
    def onset_lead_ms(self) -> float | None:
        """Impact minus the first trip after onset, when that trip came before impact."""
        if not self.tripped_in_fall:
            return None
        assert self.impact_t is not None and self.first_trip_after_onset_t is not None
        return (self.impact_t - self.first_trip_after_onset_t) * 1000.0

    @property
    def onset_delay_ms(self) -> float | None:
        """The first trip after onset minus the onset, when it came before impact."""
        if not self.tripped_in_fall:
            return None
        assert self.onset_t is not None and self.first_trip_after_onset_t is not None
        return (self.first_trip_after_onset_t - self.onset_t) * 1000.0
