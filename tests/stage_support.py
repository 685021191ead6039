"""A device database with two walkers and a two-stage progression, for the tests of the
retained ``stage/<walker>`` message (the caregiver service's and ``retroguard watch``'s)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.plan_presets import PRESETS
from core.protocol.messages import SCHEMA_VERSION, StageMessage
from core.protocol.plan import Progression, Stage
from core.protocol.walker import Walker
from firmware.storage.database import connect, transaction
from firmware.storage.progressions import start_progression
from firmware.storage.walkers import add_walker, selected_walker

DEVICE = "treadmill-1"
BOB = Walker("bob", "Bob")
SHORT = PRESETS["alternate-2-2"]
TWO_STAGES = Progression("two", (Stage(SHORT, 1, 2), Stage(PRESETS["progression-week-2"], 1, 4)))
STAGE_EXAMPLE = StageMessage(
    schema=SCHEMA_VERSION, device_id=DEVICE, walker=BOB, wall_time="2026-03-03T10:00:00.000+00:00",
    progression="two", stage=1, stages=2, stage_name="alternate-2-2",
    stage_started_wall="2026-03-02T00:00:00.000+00:00", status="running", held=False,
    change="assigned", changed_wall="2026-03-02T00:00:00.000+00:00",
    sessions_per_week=2, stage_weeks=1, weeks_done=0, week="2026-W10", week_done=0,
    zone="Europe/Berlin",
)  # fmt: skip
"""Bob's stage as a device sends it: stage 1 of :data:`TWO_STAGES`, assigned."""


def anna_and_bob_on_stage_one(path: Path, now: dt.datetime) -> None:
    """Anna and Bob on the treadmill, the default walker chosen; Bob's progression assigned
    three weeks ago (stage 1: two sessions of alternate-2-2 in a week)."""
    conn = connect(path)
    try:
        with transaction(conn):
            add_walker(conn, "Anna", walker_id="anna", by="Jo", wall="w1")
            add_walker(conn, "Bob", walker_id="bob", by="Jo", wall="w2")
            start_progression(conn, TWO_STAGES, stage=0, by="Jo", walker="bob",
                              wall=(now - dt.timedelta(days=21)).isoformat())  # fmt: skip
        assert selected_walker(conn).id == "default"
    finally:
        conn.close()
