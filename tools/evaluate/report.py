"""The table ``retroguard evaluate`` prints, from the figures document of
:func:`tools.evaluate.figures.summarise`: per code by subject half for each dataset, then the
headline rows with the datasets side by side.

Formatting only: every number in it comes from the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.evaluate.figures import HALVES, SPLITS
from tools.evaluate.result import ONSET_TOLERANCE_S


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _ms(x: float | None) -> str:
    return "   - " if x is None else f"{x:5.0f}"


DATASET_NAMES = {"sisfall": "SisFall", "kfall": "KFall", "trace": "traces"}


def _per_code_table(splits: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    per = {name: splits[name]["per_code"] for name in HALVES}
    codes = sorted(set(per["held-out"]) | set(per["tuning"]))
    head = "        n  fall/FP  trip  lead50  lead10"
    lines.append(f"{'code':<10}|{'held-out':^40}|{'tuning':^40}")
    lines.append(f"{'':<10}|{head:<40}|{head:<40}")
    for c in codes:
        cells = []
        for name in HALVES:
            g = per[name].get(c)
            if g is None:
                cells.append(f"{'':<40}")
                continue
            if "falls" in g:
                cell = (
                    f"{g['files']:>5}  {_pct(g['sensitivity'])} {_pct(g['tripped_before_impact'])}"
                    f"  {_ms(g['lead_time_ms_median'])}   {_ms(g['lead_time_ms_p10'])}"
                )
            else:
                fp = None if g["specificity"] is None else 1 - g["specificity"]
                cell = f"{g['files']:>5}  {_pct(fp)} {_pct(g['trip_rate'])}"
            cells.append(f"{cell:<40}")
        lines.append(f"{c:<10}|{cells[0]}|{cells[1]}".rstrip())
    return lines


def _onset(key: str, field: str) -> Callable[[dict[str, Any]], Any]:
    def get(s: dict[str, Any]) -> Any:
        onset = s.get("onset")
        return None if not onset else onset[key].get(field)

    return get


_ROWS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("recordings", lambda s: s["files"], "n"),
    ("fall sensitivity (FALL on falls)", lambda s: s["fall"]["sensitivity"], "%"),
    ("fall specificity (no FALL on ADLs)", lambda s: s["fall"]["specificity"], "%"),
    (
        "walking falls tripped before impact",
        lambda s: s["trip"]["walking_falls_tripped_before_impact"],
        "%",
    ),
    ("  lead time median (ms)", lambda s: s["trip"]["lead_time_ms_median"], "ms"),
    ("  lead time 10th percentile (ms)", lambda s: s["trip"]["lead_time_ms_p10"], "ms"),
    ("walking/jogging trips", lambda s: s["trip"]["walking_jogging_trips"], "n"),
    ("  walking trips", lambda s: s["trip"]["walking_trips"], "n"),
    ("  jogging trips per hour", lambda s: s["trip"]["jogging_trips_per_hour"], "x"),
    ("  per hour of walking/jogging", lambda s: s["trip"]["walking_jogging_trips_per_hour"], "x"),
    ("stumble without fall: trip rate", lambda s: s["trip"]["d18_trip_rate"], "%"),
    ("lying down: false FALL rate", lambda s: _fp(s["lying_down"]), "%"),
    ("other ADL trip rate", lambda s: s["trip"]["other_adl_trip_rate"], "%"),
    ("backward falls detected", lambda s: s["backward_falls"].get("sensitivity"), "%"),
    (
        "  tripped before impact",
        lambda s: s["backward_falls"].get("tripped_before_impact"),
        "%",
    ),
    ("  lead median (ms)", lambda s: s["backward_falls"].get("lead_time_ms_median"), "ms"),
    ("onset-labelled falls", _onset("all_falls", "falls"), "n"),
    (
        "  tripped between onset and impact",
        _onset("all_falls", "tripped_between_onset_and_impact"),
        "%",
    ),
    ("    lead to impact median (ms)", _onset("all_falls", "lead_to_impact_ms_median"), "ms"),
    ("    lead to impact p10 (ms)", _onset("all_falls", "lead_to_impact_ms_p10"), "ms"),
    ("    delay after onset median (ms)", _onset("all_falls", "delay_after_onset_ms_median"), "ms"),
    (
        f"  tripped in [onset - {ONSET_TOLERANCE_S:g} s, impact)",
        _onset("all_falls", "tripped_near_onset"),
        "%",
    ),
    ("  tripped before onset", _onset("all_falls", "tripped_before_onset"), "%"),
    ("  tripped only after impact", _onset("all_falls", "tripped_only_after_impact"), "%"),
    (
        "  walking falls in [onset, impact)",
        _onset("walking_falls", "tripped_between_onset_and_impact"),
        "%",
    ),
    (
        "  backward falls in [onset, impact)",
        _onset("backward_falls", "tripped_between_onset_and_impact"),
        "%",
    ),
]


def _fp(group: dict[str, Any]) -> float | None:
    spec = group.get("specificity")
    return None if spec is None else 1.0 - spec


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "%":
        return f"{100 * value:.1f}%"
    if kind == "ms":
        return f"{value:.0f}"
    if kind == "x":
        return f"{value:.2f}"
    return str(value)


def format_report(doc: dict[str, Any]) -> str:
    """The human table: per code (held-out | tuning) for each dataset, then the
    headline figures, the datasets side by side."""
    lines: list[str] = []
    datasets = doc["datasets"]
    for ds, splits in datasets.items():
        if len(datasets) > 1:
            lines.append(f"== {DATASET_NAMES.get(ds, ds)}")
        lines.extend(_per_code_table(splits))
    lines.append(
        "fall/FP: falls detected (F codes) or ADL recordings with a false FALL (D codes); "
        "trip: tripped before impact (F) or any trip (D); lead in ms (median, 10th pct)"
    )
    lines.append("")
    columns: list[tuple[str, dict[str, Any]]]
    if len(datasets) > 1:
        columns = [
            (f"{DATASET_NAMES.get(ds, ds)} {half}", splits[half])
            for ds, splits in datasets.items()
            for half in HALVES
        ]
    else:
        columns = [(name, doc["splits"][name]) for name in SPLITS]
    width = max(10, *(len(name) + 2 for name, _ in columns))
    lines.append(f"{'overall':<40}" + "".join(f"{name:>{width}}" for name, _ in columns))
    for label, get, kind in _ROWS:
        values = [get(s) for _, s in columns]
        if kind != "n" and all(v is None for v in values):
            continue
        lines.append(f"{label:<40}" + "".join(f"{_cell(v, kind):>{width}}" for v in values))
    f = doc["files"]
    lines.append(f"files read {f['read']}, skipped {f['skipped']}")
    for err in f["errors"][:10]:
        lines.append(f"  skipped: {err}")
    lines.append(f"split: {doc['split_rule']}")
    lines.append(f"impact: {doc['impact_rule']}")
    return "\n".join(lines)
