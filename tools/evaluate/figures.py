"""From :class:`FileResult` records to figures: the JSON document of sensitivity, specificity,
trip rates, lead times and onset scoring, per code, activity group, subject half and dataset.

Numbers only, so that the table, ``--json`` and the tests read the same figures; no printing,
no files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from firmware.detection import DetectorConfig
from tools.datasets import Activity
from tools.evaluate.impact import LANDING_TO_LYING_S, LYING_DEG
from tools.evaluate.result import FileResult

SPLITS = ("held-out", "tuning", "all")
HALVES = ("held-out", "tuning")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (q in 0-100) of ``values``; None if empty."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _leads(results: Iterable[FileResult]) -> list[float]:
    return [r.lead_ms for r in results if r.lead_ms is not None]


def group_figures(results: Sequence[FileResult]) -> dict[str, Any]:
    """Counts and rates for one set of recordings (a code, a group, a split)."""
    falls = [r for r in results if r.label == "fall"]
    adls = [r for r in results if r.label == "adl"]
    leads = _leads(falls)
    out: dict[str, Any] = {"files": len(results)}
    if falls:
        out |= {
            "falls": len(falls),
            "sensitivity": _ratio(sum(r.first_fall_t is not None for r in falls), len(falls)),
            "tripped_before_impact": _ratio(len(leads), len(falls)),
            "lead_time_ms_median": percentile(leads, 50),
            "lead_time_ms_p10": percentile(leads, 10),
        }
        labelled = [r for r in falls if r.onset_t is not None]
        if labelled:
            out["onset"] = onset_figures(labelled)
    if adls:
        hours = sum(r.duration_s for r in adls) / 3600.0
        trips = sum(r.trips for r in adls)
        out |= {
            "adls": len(adls),
            "specificity": _ratio(sum(r.first_fall_t is None for r in adls), len(adls)),
            "trip_rate": _ratio(sum(r.trips > 0 for r in adls), len(adls)),
            "trips": trips,
            "trips_per_hour": trips / hours if hours > 0 else None,
            "hours": hours,
        }
    return out


def onset_figures(falls: Sequence[FileResult]) -> dict[str, Any]:
    """Falls with a labelled onset, scored as the pre-impact literature does.

    A fall is *tripped in time* when a trip comes between its onset and its
    impact; ``lead_to_impact`` is impact minus that trip, ``delay_after_onset``
    the trip minus the onset. A trip before the onset (during whatever the
    person did before falling) is counted apart, as the false alarm it is in
    that literature; the first trip after the onset is still scored.
    """
    labelled = [r for r in falls if r.onset_t is not None]
    n = len(labelled)
    leads = [r.onset_lead_ms for r in labelled if r.onset_lead_ms is not None]
    delays = [r.onset_delay_ms for r in labelled if r.onset_delay_ms is not None]
    late = [r for r in labelled if not r.tripped_in_fall and r.first_trip_after_onset_t is not None]
    return {
        "falls": n,
        "tripped_between_onset_and_impact": _ratio(len(leads), n),
        "lead_to_impact_ms_median": percentile(leads, 50),
        "lead_to_impact_ms_p10": percentile(leads, 10),
        "delay_after_onset_ms_median": percentile(delays, 50),
        "delay_after_onset_ms_p90": percentile(delays, 90),
        "tripped_near_onset": _ratio(sum(r.tripped_near_onset for r in labelled), n),
        "tripped_before_onset": _ratio(sum(r.trips_before_onset > 0 for r in labelled), n),
        "tripped_only_after_impact": _ratio(len(late), n),
        "never_tripped_after_onset": _ratio(
            sum(r.first_trip_after_onset_t is None for r in labelled), n
        ),
    }


def _in(results: Iterable[FileResult], *groups: Activity) -> list[FileResult]:
    names = {g.value for g in groups}
    return [r for r in results if r.group in names]


def _hours(results: Iterable[FileResult]) -> float:
    return sum(r.duration_s for r in results) / 3600.0


def split_figures(results: Sequence[FileResult]) -> dict[str, Any]:
    """The headline figures (the issue's JSON schema) for one split."""
    falls = [r for r in results if r.label == "fall"]
    adls = [r for r in results if r.label == "adl"]
    walking_falls = _in(falls, Activity.WALKING_FALL)
    walking = _in(adls, Activity.WALKING)
    jogging = _in(adls, Activity.JOGGING)
    stumble = _in(adls, Activity.STUMBLE)
    lying = _in(adls, Activity.LYING_DOWN)
    other = _in(adls, Activity.STAIRS, Activity.LYING_DOWN, Activity.OTHER_ADL)
    backward = [r for r in falls if r.backward]
    leads = _leads(walking_falls)
    walk_hours, jog_hours = _hours(walking), _hours(jogging)
    walk_trips = sum(r.trips for r in walking)
    jog_trips = sum(r.trips for r in jogging)
    codes = sorted({r.code for r in results})
    labelled = [r for r in falls if r.onset_t is not None]
    return {
        "fall": {
            "sensitivity": _ratio(sum(r.first_fall_t is not None for r in falls), len(falls)),
            "specificity": _ratio(sum(r.first_fall_t is None for r in adls), len(adls)),
            "falls": len(falls),
            "adls": len(adls),
        },
        "trip": {
            "walking_falls": len(walking_falls),
            "walking_falls_tripped_before_impact": _ratio(len(leads), len(walking_falls)),
            "lead_time_ms_median": percentile(leads, 50),
            "lead_time_ms_p10": percentile(leads, 10),
            "walking_jogging_trips": walk_trips + jog_trips,
            "walking_jogging_hours": walk_hours + jog_hours,
            "walking_jogging_trips_per_hour": (
                # none for no time walked: a one-row recording lasts 0 s (a ZeroDivisionError)
                (walk_trips + jog_trips) / (walk_hours + jog_hours)
                if walk_hours + jog_hours
                else None
            ),
            "walking_trips": walk_trips,
            "walking_recordings_tripped": sum(r.trips > 0 for r in walking),
            "walking_hours": walk_hours,
            "jogging_trips": jog_trips,
            "jogging_hours": jog_hours,
            "jogging_trips_per_hour": jog_trips / jog_hours if jog_hours else None,
            "d18_trip_rate": _ratio(sum(r.trips > 0 for r in stumble), len(stumble)),
            "other_adl_trip_rate": _ratio(sum(r.trips > 0 for r in other), len(other)),
            "falls_tripped_before_impact": _ratio(len(_leads(falls)), len(falls)),
        },
        "lying_down": group_figures(lying),
        "backward_falls": group_figures(backward),
        "onset": {
            "all_falls": onset_figures(labelled),
            "walking_falls": onset_figures([r for r in walking_falls if r.onset_t is not None]),
            "backward_falls": onset_figures([r for r in backward if r.onset_t is not None]),
        }
        if labelled
        else None,
        "groups": {g.value: group_figures(_in(results, g)) for g in Activity if _in(results, g)},
        "per_code": {c: group_figures([r for r in results if r.code == c]) for c in codes},
    }


def summarise(
    results: Sequence[FileResult], split: str = "held-out", config: DetectorConfig | None = None
) -> dict[str, Any]:
    """The JSON document: top-level figures for ``split``, every split below,
    and the same per dataset (``datasets``: SisFall, KFall, traces) so two
    datasets evaluated together are reported side by side."""
    ok = [r for r in results if r.error is None]
    datasets = sorted({r.dataset for r in ok})
    if len(datasets) > 1:
        # The same code means different things in two datasets (SisFall's D01
        # is walking, KFall's standing): qualify them.
        ok = [_qualified(r) for r in ok]
    doc: dict[str, Any] = split_figures(_halves(ok)[split])
    doc["split"] = split
    doc["files"] = {
        "read": len(ok),
        "skipped": len(results) - len(ok),
        "errors": [r.error for r in results if r.error is not None],
    }
    halves = _halves(ok)
    doc["splits"] = {name: split_figures(rs) | {"files": len(rs)} for name, rs in halves.items()}
    doc["datasets"] = {
        ds: {
            name: split_figures(rs) | {"files": len(rs)}
            for name, rs in _halves([r for r in ok if r.dataset == ds]).items()
        }
        for ds in datasets
    }
    doc["split_rule"] = (
        "by subject id: odd subject number = tuning half, even = held-out "
        "(ids without digits: CRC-32 parity; no subject: file name)"
    )
    doc["impact_rule"] = (
        "labelled impact (KFall, a trace's impact_t) if present, else the sample of peak "
        f"|acceleration| among those followed within {LANDING_TO_LYING_S:g} s by the trunk "
        f"lying (> {LYING_DEG:g} deg); onset-labelled falls also scored between onset and impact"
    )
    if config is not None:
        doc["detector_config"] = asdict(config)
    return doc


def _halves(ok: Sequence[FileResult]) -> dict[str, list[FileResult]]:
    return {
        "held-out": [r for r in ok if not r.tuning],
        "tuning": [r for r in ok if r.tuning],
        "all": list(ok),
    }


def _qualified(r: FileResult) -> FileResult:
    from dataclasses import replace

    return replace(r, code=f"{r.dataset}:{r.code}")
