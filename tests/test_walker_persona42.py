"""The walker's session as she meets it at the belt: what the voice says as the session first
runs, on a simulated rig with a speaker that records every sentence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from firmware.session.cues import Cue
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionState, attach_session
from tests.app_support import Heard, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

PLAN = Plan(
    "short",
    (
        Interval.of_seconds("backward", 30.0),
        Interval.of_seconds("forward", 20.0),
    ),
)


@pytest.mark.parametrize("balance_check", [True, False], ids=["balance-check", "waiting"])
def test_a_session_started_before_arming_first_says_to_start_the_belt(
    tmp_path: Path, balance_check: bool
) -> None:
    """A session started in STANDBY waits, paused, until the walker arms (the demo's way, and a
    session started with ``retroguard session start`` before she stepped on). Arming closes the
    relay, and the treadmill waits for its own start button (wiring/README.md, section 9): the
    belt stands still when the first cue comes. It used to say "Interval 1 of 2. Walk backward
    for 30 seconds." to a walker on a still belt who cannot see behind her: stepping backward
    walks her towards its end, what the restart words after a trip were made to prevent. It
    says to start the belt first, as after a trip."""
    rig = make_rig(tmp_path)
    rig.run_for(5.0)  # STANDBY, the sensor seen worn
    assert rig.state == "STANDBY"
    config = rig.app.config
    session = dataclasses.replace(config.session, balance_check=balance_check)
    rig.app.config = dataclasses.replace(config, session=session)
    heard = Heard()
    runner = attach_session(rig.app, PLAN, record=False, speaker=heard)
    runner.request("start")
    rig.run_for(1.0)
    # waiting for arming (the balance check first, if on; the press ends it): never armed
    waiting = SessionState.BALANCE if balance_check else SessionState.PAUSED
    assert runner.state is waiting and rig.state == "STANDBY"
    before = len(heard.said)  # the balance check's words, if it opened with one
    rig.press_reset()
    rig.run_for(3.0)
    assert rig.state == "ARMED" and runner.state is SessionState.RUNNING
    first = next(c for c in runner.cues if c.cue is Cue.BACKWARD)
    assert first.interval == 0 and first.played
    assert first.belt_stopped and first.text == "Start the belt, walk backward."
    start = "Start the belt slowly, holding the rail, then walk backward. Interval 1 of 2."
    assert heard.said[before:] == [start, "1 minute to go."]
    assert start in runner.prompts.all_for_plan(PLAN)  # rendered ahead, not on the loop


def test_a_session_started_while_armed_keeps_the_walk_words(tmp_path: Path) -> None:
    """Armed before the session (a double press once she has started the belt): the belt is as
    she left it, and the first cue says the interval as it always has."""
    rig = make_rig(tmp_path)
    rig.run_for(5.0)
    rig.press_reset()
    rig.run_for(2.0)
    assert rig.state == "ARMED"
    heard = Heard()
    runner = attach_session(rig.app, PLAN, record=False, speaker=heard)
    runner.request("start")
    rig.run_for(2.0)
    first = runner.cues[0]
    assert (first.cue, first.belt_stopped, first.text) == (Cue.BACKWARD, False, "Walk backward.")
    assert heard.said[0].startswith("Interval 1 of 2. Walk backward for 30 seconds.")
