"""``retroguard evaluate-gait``: the gait and balance meters on public recordings, rerunnable.

What it reads
    * SisFall (``--sisfall DIR``, default ``$RETROGUARD_SISFALL``): D01 (walking slowly) and
      D02 (walking quickly), one 100 s recording per subject and activity, waist sensor,
      200 Hz.
    * KFall (``--kfall DIR``, default ``$RETROGUARD_KFALL``): T06 (walk normally with a turn,
      4 m) and T07 (walk quickly with a turn), five trials per subject, and T01 (stand for
      30 s), one trial; low-back sensor, 100 Hz, axes as SisFall's (``x=right y=down
      z=forward``, read off the data).

What it reports
    1. **Steps** found by the device's streaming meter (:mod:`firmware.gait.walking`, every
       step, steady or not) against the offline NumPy reference
       (:mod:`tools.gait_reference`), which shares nothing with it but the input. Neither
       dataset has footstep labels: this is agreement between two methods, not accuracy
       against annotated footsteps. Matched, missed and extra steps, the timing SD of the
       matched ones, and the **cadence error** (the meter's steady cadence less the
       reference's).
    2. **An unknown mounting**: every walk measured again with ``mounting = "unknown"``:
       whether AP/ML were learned, and how far the learned trunk RMS AP/ML and ML harmonic
       ratio are from the known mounting's.
    3. **Between-trial repeatability** per metric: trials of the same subject and activity
       (KFall: the five trials; SisFall, which recorded each walk once: the first and the
       second 50 s of it; KFall standing: the two halves of the 30 s after 3 s of
       settling). Per metric: the within-subject SD ``Sw`` (one-way ANOVA, the root of the
       within-subject mean square), the **minimal detectable change** ``MDC95 = 1.96 √2 Sw``
       (the smallest difference between two single measurements that noise explains less
       than 5 % of the time; Weir 2005, *J Strength Cond Res* 19:231), ``Sw`` as a share of
       the mean, and the ICC(1,1).
    Each table is given for the held-out subjects (even numbers), the tuning subjects (odd:
    the only ones any setting of the meters was chosen on) and all
    (:func:`tools.datasets.is_tuning_subject`).

Needs NumPy (the reference, ``pip install '.[batch]'``); the meters themselves do not.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.cliargs import output_file, unreachable
from core.mounting import SISFALL_MOUNTING, UNKNOWN_MOUNTING, Mounting
from core.samples import ImuSample
from firmware.gait.balance import BalanceMeter, SwayMetrics
from firmware.gait.frame import AxisLearner
from firmware.gait.stream import Decimator
from firmware.gait.walking import GaitMeasure, GaitMeter
from tools.datasets import DatasetFormatError, describe, discover, is_tuning_subject, unlisted
from tools.datasets.kfall import KFALL_MOUNTING, KFALL_RATE_HZ, find_kfall, parse_name, read_kfall
from tools.datasets.sisfall import SISFALL_RATE_HZ, read_sisfall

SISFALL_WALKS = {"D01": "SisFall D01 walk slowly", "D02": "SisFall D02 walk quickly"}
KFALL_WALKS = {6: "KFall T06 walk + turn", 7: "KFall T07 walk fast + turn"}
KFALL_STAND = 1
SISFALL_HALF_S = 50.0
STAND_SETTLE_S = 3.0

GAIT_METRICS: tuple[tuple[str, str], ...] = (
    ("cadence_spm", "steps/min"),
    ("step_time_s", "s"),
    ("step_time_cv_pct", "%"),
    ("step_asymmetry_pct", "%"),
    ("step_regularity", ""),
    ("stride_regularity", ""),
    ("step_symmetry", ""),
    ("harmonic_ratio_v", ""),
    ("harmonic_ratio_ap", ""),
    ("harmonic_ratio_ml", ""),
    ("rms_v", "m/s²"),
    ("rms_ap", "m/s²"),
    ("rms_ml", "m/s²"),
    ("steady_share", ""),
)
SWAY_METRICS: tuple[tuple[str, str], ...] = (
    ("rms_ap", "m/s²"),
    ("rms_ml", "m/s²"),
    ("range_ap", "m/s²"),
    ("range_ml", "m/s²"),
    ("path", "m/s²"),
    ("mean_velocity", "m/s"),
    ("jerk", "m²/s⁵"),
    ("ellipse_area", "m²/s⁴"),
)
"""The noise floor is a property of the sensor, reported with the whole trial only."""
SPLITS = ("held-out", "tuning", "all")


# ----------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Walk:
    group: str
    subject: str
    trial: str
    rate_hz: float
    mounting: Mounting
    path: Path
    read: Callable[[], list[ImuSample]]


def sisfall_walks(root: Path) -> list[Walk]:
    walks = []
    for p in discover(root):
        rec = describe(p)
        if rec.source == "sisfall" and rec.code in SISFALL_WALKS and rec.subject:
            walks.append(
                Walk(
                    SISFALL_WALKS[rec.code],
                    rec.subject,
                    p.stem.rsplit("_", 1)[-1],
                    SISFALL_RATE_HZ,
                    SISFALL_MOUNTING,
                    p,
                    functools.partial(read_sisfall, p),
                )
            )
    return walks


def kfall_files(root: Path, task: int) -> list[tuple[str, str, Path]]:
    """(subject ``SA06``, trial ``R01``, path) of one task's files under ``root``."""
    found = []
    for p in find_kfall(root, frozenset({task})):
        name = parse_name(p)
        assert name is not None  # find_kfall keeps only what parse_name reads
        found.append((name.subject, f"R{name.trial:02d}", p))
    return found


def kfall_walks(root: Path) -> list[Walk]:
    return [
        Walk(
            name, subject, trial, KFALL_RATE_HZ, KFALL_MOUNTING, p, functools.partial(read_kfall, p)
        )
        for task, name in KFALL_WALKS.items()
        for subject, trial, p in kfall_files(root, task)
    ]


# --------------------------------------------------------------- measuring


def measure_walk(
    samples: Sequence[ImuSample], rate_hz: float, mounting: Mounting
) -> tuple[GaitMeasure, list[float]]:
    """The interval figures and every step the meter found, as the monitor would measure."""
    decimator = Decimator(rate_hz)
    meter = GaitMeter(decimator.rate_hz, mounting, AxisLearner(), record_steps=True)
    for a in decimator.feed(samples):
        if a is None:
            meter.gap()
        else:
            meter.add(*a)
    return meter.finish(), meter.step_times or []


@dataclass(frozen=True, slots=True)
class StepRow:
    group: str
    subject: str
    trial: str
    reference: int
    detected: int
    matched: int
    timing_sd_ms: float | None
    cadence_error_spm: float | None
    reference_agrees: bool
    unknown_learned: bool = False
    """Measured again with ``mounting = "unknown"``: AP/ML were learned by the end."""
    unknown_rms_error_pct: float | None = None
    """The larger |difference| of walking trunk RMS AP and ML, learned against known, %."""
    unknown_hr_ml_error_pct: float | None = None


def _pct_error(learned: float | None, known: float | None) -> float | None:
    if learned is None or known is None or known == 0.0:
        return None
    return 100.0 * abs(learned - known) / abs(known)


@dataclass(slots=True)
class Trials:
    """Per group: subject -> metric -> the values of that subject's trials."""

    values: dict[str, dict[str, dict[str, list[float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    measured: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Trials measured per group (some metrics may still be absent in some)."""

    def add(self, group: str, subject: str, figures: dict[str, float | None]) -> None:
        self.measured[group] += 1
        for name, value in figures.items():
            if value is not None and math.isfinite(value):
                self.values[group][subject][name].append(value)


def gait_values(m: GaitMeasure) -> dict[str, float | None]:
    out: dict[str, float | None] = {name: getattr(m, name) for name, _ in GAIT_METRICS}
    return out


def sway_values(m: SwayMetrics) -> dict[str, float | None]:
    return {name: getattr(m, name) for name, _ in SWAY_METRICS}


def evaluate_walk(walk: Walk, trials: Trials) -> StepRow:
    import numpy as np

    from tools.gait_reference import Recording, match_steps, reference_steps

    samples = walk.read()
    measure, steps = measure_walk(samples, walk.rate_hz, walk.mounting)
    blind, _ = measure_walk(samples, walk.rate_hz, UNKNOWN_MOUNTING)
    rms_errors = [
        e
        for e in (
            _pct_error(blind.rms_ap, measure.rms_ap),
            _pct_error(blind.rms_ml, measure.rms_ml),
        )
        if e is not None
    ]
    ref = reference_steps(Recording.of(samples, walk.rate_hz), walk.mounting)
    match = match_steps(ref.times, np.asarray(steps))
    ref_cadence = ref.cadence_spm()
    error = (
        measure.cadence_spm - ref_cadence
        if measure.cadence_spm is not None and math.isfinite(ref_cadence)
        else None
    )
    if walk.rate_hz == SISFALL_RATE_HZ and samples[-1].t - samples[0].t > 2 * SISFALL_HALF_S * 0.9:
        t0 = samples[0].t
        for half in (
            [s for s in samples if s.t - t0 < SISFALL_HALF_S],
            [s for s in samples if s.t - t0 >= SISFALL_HALF_S],
        ):
            trials.add(
                walk.group,
                walk.subject,
                gait_values(measure_walk(half, walk.rate_hz, walk.mounting)[0]),
            )
    else:
        trials.add(walk.group, walk.subject, gait_values(measure))
    return StepRow(
        group=walk.group,
        subject=walk.subject,
        trial=walk.trial,
        reference=match.reference,
        detected=match.detected,
        matched=match.matched,
        timing_sd_ms=None if math.isnan(match.timing_sd_s) else 1000.0 * match.timing_sd_s,
        cadence_error_spm=error,
        reference_agrees=ref.vertical_agrees,
        unknown_learned=blind.axes == "learned",
        unknown_rms_error_pct=max(rms_errors) if blind.axes == "learned" and rms_errors else None,
        unknown_hr_ml_error_pct=(
            _pct_error(blind.harmonic_ratio_ml, measure.harmonic_ratio_ml)
            if blind.axes == "learned"
            else None
        ),
    )


def evaluate_stance(subject: str, path: Path, trials: Trials, group: str) -> SwayMetrics:
    """KFall's 30 s stand: the whole trial's sway, and each half as a trial."""
    samples = read_kfall(path)
    decimator = Decimator(KFALL_RATE_HZ)
    meter = BalanceMeter(decimator.rate_hz, KFALL_MOUNTING, settle_s=STAND_SETTLE_S)
    for a in decimator.feed(samples):
        if a is not None:
            meter.add(a[0], a[1], a[2], a[3])
    whole = meter.signal()
    h = len(whole.a1) // 2
    for part in (slice(0, h), slice(h, 2 * h)):
        half = replace(whole, a1=whole.a1[part], a2=whole.a2[part])
        trials.add(group, subject, sway_values(half.metrics()))
    return whole.metrics()


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True, slots=True)
class Repeatability:
    subjects: int
    trials: int
    mean: float
    within_sd: float
    mdc95: float
    within_cv_pct: float | None
    icc: float | None


def repeatability(groups: Iterable[Sequence[float]]) -> Repeatability | None:
    """One-way random-effects ANOVA over subjects with two or more trials (unbalanced)."""
    g = [list(v) for v in groups if len(v) >= 2]
    k = len(g)
    n = sum(len(v) for v in g)
    if k < 2:
        return None
    grand = sum(sum(v) for v in g) / n
    means = [sum(v) / len(v) for v in g]
    ssw = sum(sum((x - m) ** 2 for x in v) for v, m in zip(g, means, strict=True))
    ssb = sum(len(v) * (m - grand) ** 2 for v, m in zip(g, means, strict=True))
    msw = ssw / (n - k)
    msb = ssb / (k - 1)
    n0 = (n - sum(len(v) ** 2 for v in g) / n) / (k - 1)
    denom = msb + (n0 - 1.0) * msw
    icc = (msb - msw) / denom if denom > 0 else None
    sw = math.sqrt(msw)
    return Repeatability(
        subjects=k,
        trials=n,
        mean=grand,
        within_sd=sw,
        mdc95=1.96 * math.sqrt(2.0) * sw,
        within_cv_pct=100.0 * sw / abs(grand) if grand else None,
        icc=icc,
    )


def in_split(subject: str, split: str) -> bool:
    return split == "all" or is_tuning_subject(subject) == (split == "tuning")


def repeatability_tables(
    trials: Trials, metrics: dict[str, tuple[tuple[str, str], ...]]
) -> dict[str, dict[str, dict[str, dict[str, Any] | None]]]:
    """group -> split -> metric -> figures (as dicts)."""
    out: dict[str, dict[str, dict[str, dict[str, Any] | None]]] = {}
    for group, by_subject in trials.values.items():
        out[group] = {}
        for split in SPLITS:
            out[group][split] = {}
            for name, _ in metrics[group]:
                r = repeatability(
                    values[name] for s, values in by_subject.items() if in_split(s, split)
                )
                out[group][split][name] = asdict(r) if r is not None else None
    return out


def median(xs: Sequence[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def step_summary(rows: Sequence[StepRow]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for group in dict.fromkeys(r.group for r in rows):
        for split in SPLITS:
            rs = [r for r in rows if r.group == group and in_split(r.subject, split)]
            if not rs:
                continue
            errors = [abs(r.cadence_error_spm) for r in rs if r.cadence_error_spm is not None]
            sds = [r.timing_sd_ms for r in rs if r.timing_sd_ms is not None]
            out[group][split] = {
                "recordings": len(rs),
                "reference_steps": sum(r.reference for r in rs),
                "detected_steps": sum(r.detected for r in rs),
                "matched_steps": sum(r.matched for r in rs),
                "missed_steps": sum(r.reference - r.matched for r in rs),
                "extra_steps": sum(r.detected - r.matched for r in rs),
                "timing_sd_ms_median": median(sds),
                "with_cadence": len(errors),
                "cadence_abs_error_spm_median": median(errors),
                "cadence_abs_error_spm_max": max(errors) if errors else None,
                "reference_disagrees": sum(not r.reference_agrees for r in rs),
                "unknown_mounting_learned": sum(r.unknown_learned for r in rs),
                "unknown_rms_error_pct_max": max(
                    (e for r in rs if (e := r.unknown_rms_error_pct) is not None), default=None
                ),
                "unknown_hr_ml_error_pct_median": median(
                    [e for r in rs if (e := r.unknown_hr_ml_error_pct) is not None]
                ),
            }
    return dict(out)


# ------------------------------------------------------------------ report


def _f(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def format_report(doc: dict[str, Any]) -> str:
    lines = [
        "Steps: the device's streaming meter against the offline NumPy reference",
        "(no footstep labels in these datasets: agreement between two methods)",
        "",
        f"{'group':<28} {'split':<9} {'recs':>4} {'ref':>6} {'found':>6} {'match':>6} "
        f"{'miss':>5} {'extra':>5} {'sd ms':>6} {'cad n':>5} {'|cad err| med':>13} {'max':>6}",
    ]
    for group, splits in doc["steps"].items():
        for split, s in splits.items():
            lines.append(
                f"{group:<28} {split:<9} {s['recordings']:>4} {s['reference_steps']:>6} "
                f"{s['detected_steps']:>6} {s['matched_steps']:>6} {s['missed_steps']:>5} "
                f"{s['extra_steps']:>5} {_f(s['timing_sd_ms_median']):>6} "
                f"{s['with_cadence']:>5} {_f(s['cadence_abs_error_spm_median']):>13} "
                f"{_f(s['cadence_abs_error_spm_max']):>6}"
            )
    lines += [
        "",
        "Unknown mounting: each walk measured again with AP/ML to be learned from the stride",
        f"{'group':<28} {'split':<9} {'recs':>4} {'learned':>7} "
        f"{'max |RMS AP/ML err| %':>21} {'median |HR ML err| %':>20}",
    ]
    for group, splits in doc["steps"].items():
        for split, s in splits.items():
            lines.append(
                f"{group:<28} {split:<9} {s['recordings']:>4} "
                f"{s['unknown_mounting_learned']:>7} "
                f"{_f(s['unknown_rms_error_pct_max']):>21} "
                f"{_f(s['unknown_hr_ml_error_pct_median']):>20}"
            )
    lines += [
        "",
        "Between-trial repeatability (Sw: within-subject SD; MDC95 = 1.96·√2·Sw; CVw = Sw/mean)",
    ]
    units = dict(GAIT_METRICS) | dict(SWAY_METRICS) | {"noise_floor": "m/s²"}
    for group, splits in doc["repeatability"].items():
        lines += [
            "",
            f"{group}  ({doc['trials_measured'].get(group, 0)} trials measured; "
            f"{doc['trial_kind'].get(group, '')})",
            f"  {'metric':<20} {'unit':<10} "
            + " ".join(f"{s + ' n/mean/Sw/MDC95/CVw%/ICC':<46}" for s in SPLITS),
        ]
        names = list(next(iter(splits.values())).keys())
        for name in names:
            cells = []
            for split in SPLITS:
                r = splits[split].get(name)
                if r is None:
                    cells.append(f"{'-':<46}")
                else:
                    cells.append(
                        f"{r['subjects']:>2}/{_f(r['mean']):>6} {_f(r['within_sd']):>7} "
                        f"{_f(r['mdc95']):>7} {_f(r['within_cv_pct'], 2):>5} "
                        f"{_f(r['icc'], 2):>5}".ljust(46)
                    )
            lines.append(f"  {name:<20} {units.get(name, ''):<10} " + " ".join(cells))
    if doc.get("standing"):
        lines += ["", "KFall T01 standing, whole 27 s after settling (median over subjects):"]
        for name, value in doc["standing"].items():
            lines.append(f"  {name:<20} {units.get(name, ''):<10} {_f(value)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- commands


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate-gait",
        help="the gait and balance meters on SisFall and KFall: steps, repeatability",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    configure_parser(p)
    p.set_defaults(func=run)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sisfall",
        type=Path,
        default=os.environ.get("RETROGUARD_SISFALL"),
        help="SisFall_dataset directory (default: $RETROGUARD_SISFALL)",
    )
    p.add_argument(
        "--kfall",
        type=Path,
        default=os.environ.get("RETROGUARD_KFALL"),
        help="KFall directory (sensor_data/...; default: $RETROGUARD_KFALL)",
    )
    p.add_argument(
        "--json", type=output_file, default=None, metavar="FILE", help="write figures as JSON"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    try:
        import numpy  # noqa: F401
    except ImportError:
        print(
            "evaluate-gait: needs NumPy for the reference: pip install '.[batch]'", file=sys.stderr
        )
        return 2
    walks: list[Walk] = []
    stands: list[tuple[str, str, Path]] = []
    for option, root in (("--sisfall", args.sisfall), ("--kfall", args.kfall)):
        reach = None if root is None else unreachable(root)
        if reach is not None:
            print(f"evaluate-gait: {option} {reach}", file=sys.stderr)
            return 2
        if root is not None and not Path(root).is_dir():
            print(f"evaluate-gait: {option} {root}: not a directory", file=sys.stderr)
            return 2
        if root is not None and (why := unlisted(root)) is not None:
            print(f"evaluate-gait: {option} {why}", file=sys.stderr)
            return 2
    if args.sisfall is not None:
        walks += sisfall_walks(Path(args.sisfall))
    if args.kfall is not None:
        walks += kfall_walks(Path(args.kfall))
        stands = kfall_files(Path(args.kfall), KFALL_STAND)
    if not walks and not stands:
        print("evaluate-gait: no walking or standing recordings found", file=sys.stderr)
        return 2
    trials = Trials()
    rows: list[StepRow] = []
    total = len(walks) + len(stands)
    # a recording that cannot be read (DatasetFormatError), or is too short to be measured (a
    # ValueError: no spectrum bin in the step band, a stand no longer than its settling), is
    # skipped and counted, as evaluate skips one: one such file ended the run in a traceback.
    # Each raises before it adds to trials.
    skipped: list[str] = []
    for i, walk in enumerate(walks, start=1):
        if not args.no_progress:
            print(f"\r{i}/{total} {walk.path.name:<24}", end="", file=sys.stderr, flush=True)
        try:
            rows.append(evaluate_walk(walk, trials))
        except (OSError, ValueError) as exc:
            skipped.append(_unmeasured(walk.path, exc))
    stand_group = "KFall T01 stand 30 s"
    whole: list[SwayMetrics] = []
    for j, (subject, _, path) in enumerate(stands, start=len(walks) + 1):
        if not args.no_progress:
            print(f"\r{j}/{total} {path.name:<24}", end="", file=sys.stderr, flush=True)
        try:
            whole.append(evaluate_stance(subject, path, trials, stand_group))
        except (OSError, ValueError) as exc:
            skipped.append(_unmeasured(path, exc))
    if not args.no_progress:
        print(file=sys.stderr)
    if skipped:
        measured = total - len(skipped)
        said = f"{measured} of {total}" if measured else f"none of the {total}"
        print(
            f"evaluate-gait: {said} recordings measured ({len(skipped)} skipped; first: "
            f"{skipped[0]})",
            file=sys.stderr,
        )
        if not measured:
            return 2
    metrics = {g: GAIT_METRICS for g in trials.values} | {stand_group: SWAY_METRICS}
    kinds = {g: "each 100 s walk's two 50 s halves" for g in SISFALL_WALKS.values()}
    kinds |= {g: "five trials per subject" for g in KFALL_WALKS.values()}
    kinds[stand_group] = "each stand's two 13.5 s halves"
    standing: dict[str, float | None] = {}
    for name, _ in (*SWAY_METRICS, ("noise_floor", "m/s²")):
        xs = [v for m in whole if (v := getattr(m, name)) is not None]
        standing[name] = median(xs)
    doc: dict[str, Any] = {
        "steps": step_summary(rows),
        "repeatability": repeatability_tables(trials, metrics),
        "trials_measured": dict(trials.measured),
        "trial_kind": kinds,
        "standing": standing if whole else {},
        "recordings": [asdict(r) for r in rows],
    }
    print(format_report(doc))
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _unmeasured(path: Path, exc: Exception) -> str:
    """Why a recording was skipped, naming it (a DatasetFormatError names it and its line)."""
    if isinstance(exc, DatasetFormatError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or exc}"
    return f"{path}: cannot be measured: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="retroguard evaluate-gait", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
