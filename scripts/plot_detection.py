"""Plot one recording through the detector: signals, thresholds, trip point.

Makes the figures in ``docs/detector.md``: a real SisFall backward slip (F02)
and a KFall backward slip while walking (F15) with its video-labelled fall
onset and impact. Needs matplotlib (``pip install -e '.[plot]'``); nothing
else in RetroGuard does.

    .venv/bin/python scripts/plot_detection.py [FILE] [--out docs/detector-f02.png]
    .venv/bin/python scripts/plot_detection.py KFall/sensor_data/SA10/S10T34R01.csv \
        --out docs/detector-kfall-f15.png

FILE defaults to ``F02_SA02_R01.txt`` (a held-out subject) in the SisFall
subset that ``../shared/datasets/unpack`` provides. Where the recording
carries a labelled onset (KFall) it is marked (green dashed) beside the
impact (red: labelled, else the peak of |a|) and the detections (orange
dotted: trips, grey: FALL confirmation).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware.detection import TRIPPING_KINDS, DetectionKind, DetectorConfig  # noqa: E402
from firmware.detection.retro import FallDetector  # noqa: E402
from tools.datasets import describe, open_samples  # noqa: E402

DEFAULT = "F02_SA02_R01.txt"


def default_file() -> Path:
    unpack = ROOT.parent / "shared" / "datasets" / "unpack"
    out = subprocess.run([str(unpack)], check=True, capture_output=True, text=True).stdout
    root = Path(out.strip().splitlines()[-1])
    return root / DEFAULT.split("_")[1] / DEFAULT


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "detector-f02.png")
    ap.add_argument("--before", type=float, default=2.5, help="seconds shown before the impact")
    ap.add_argument("--after", type=float, default=3.0, help="seconds shown after the impact")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = args.file or default_file()
    rec = describe(path)
    cfg = DetectorConfig()
    rate = 200.0
    det = FallDetector(cfg, rate, up=rec.up)
    t: list[float] = []
    acc: list[float] = []
    tilt: list[float] = []
    gain: list[float] = []
    down: list[float] = []
    act: list[float] = []
    events: list[tuple[float, DetectionKind, str]] = []
    for s in open_samples(rec, rate):
        for d in det.update(s):
            events.append((d.t, d.kind, d.reason))
        t.append(s.t)
        acc.append(s.accel_magnitude)
        tilt.append(det.tilt_deg)
        gain.append(det.tilt_gain_deg)
        down.append(-det.vz_mps)
        act.append(det.activity_g)
    impact = (
        rec.impact_t if rec.impact_t is not None else t[max(range(len(t)), key=acc.__getitem__)]
    )
    lo, hi = impact - args.before, impact + args.after
    idx = [i for i, x in enumerate(t) if lo <= x <= hi]
    tt = [t[i] - impact for i in idx]

    fig, axes = plt.subplots(4, 1, sharex=True, figsize=(9, 9))
    ax = axes[0]
    ax.plot(tt, [acc[i] for i in idx], color="k", lw=1)
    ax.axhline(cfg.impact_g, color="tab:red", ls="--", lw=1, label=f"impact {cfg.impact_g:g} g")
    ax.axhline(
        cfg.freefall_g, color="tab:blue", ls="--", lw=1, label=f"free fall {cfg.freefall_g:g} g"
    )
    ax.set_ylabel("|a| (g)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[1]
    ax.plot(tt, [tilt[i] for i in idx], color="k", lw=1, label="trunk tilt")
    ax.plot(tt, [gain[i] for i in idx], color="tab:green", lw=1, label="tilt gained in 0.3 s")
    for y, lab, c in (
        (cfg.stumble_tilt_deg, "stumble tilt", "tab:orange"),
        (cfg.rotation_gain_deg, "rotation gain", "tab:green"),
        (cfg.rotation_tilt_deg, "rotation tilt", "tab:purple"),
        (cfg.lying_tilt_deg, "lying", "tab:red"),
    ):
        ax.axhline(y, color=c, ls="--", lw=1, label=f"{lab} {y:g}°")
    ax.set_ylabel("degrees")
    ax.legend(loc="upper left", fontsize=8, ncol=2)

    ax = axes[2]
    ax.plot(tt, [down[i] for i in idx], color="k", lw=1, label="downward velocity")
    ax.axhline(
        cfg.stumble_velocity_mps,
        color="tab:orange",
        ls="--",
        lw=1,
        label=f"stumble {cfg.stumble_velocity_mps:g} m/s (with tilt)",
    )
    ax.set_ylabel("m/s")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[3]
    ax.plot(tt, [act[i] for i in idx], color="k", lw=1, label="gait activity")
    ax.axhline(
        cfg.rotation_max_activity_g,
        color="tab:green",
        ls="--",
        lw=1,
        label=f"rotation rule only below {cfg.rotation_max_activity_g:g} g",
    )
    ax.set_ylabel("g")
    ax.set_xlabel(
        "time from impact (s)  [impact: "
        + ("video label" if rec.impact_t is not None else "peak |a|")
        + ("; green dashed: labelled fall onset" if rec.onset_t is not None else "")
        + "; orange dotted: STUMBLE, then FALL]"
    )
    ax.legend(loc="upper left", fontsize=8)

    onset = None if rec.onset_t is None else rec.onset_t - impact
    for a in axes:
        a.axvline(0.0, color="tab:red", lw=1.5)
        if onset is not None:
            a.axvline(onset, color="tab:green", lw=1.5, ls="--")
        for et, kind, _ in events:
            if lo <= et <= hi:
                color = "tab:orange" if kind in TRIPPING_KINDS else "tab:gray"
                a.axvline(et - impact, color=color, lw=1.5, ls=":")
    first = next(((et, r) for et, k, r in events if k in TRIPPING_KINDS), None)
    title = f"{path.name}: "
    if first is not None:
        title += f"trip at {1000 * (impact - first[0]):.0f} ms before impact"
        if rec.onset_t is not None:
            title += f", {1000 * (first[0] - rec.onset_t):.0f} ms after onset"
        title += f"\n({first[1]})"
    else:
        title += "no trip"
    falls = [et for et, k, _ in events if k is DetectionKind.FALL]
    if falls:
        title += f"; FALL confirmed {falls[0] - impact:+.2f} s"
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
