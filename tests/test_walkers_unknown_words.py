"""What the walker hears from a button gesture while the walker profiles are still on their way.

Until the courier's roster has reached the loop no session starts (whose it would be is not
known), and a double press to start one is answered in words saying so. A long press, which
stops a session, with none under way is answered by nothing: it asked for no start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.plan_presets import PRESETS
from firmware.session.attach import attach_session
from firmware.session.runner import SessionState, detach_session
from firmware.session.voice import Prompts
from tests.app_support import Heard, close_rigs, make_rig, pump_link_until

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def test_a_long_press_before_the_roster_is_not_told_it_did_not_start(tmp_path: Path) -> None:
    """Armed before the roster came, the walker holds reset 2.5 s (the gesture that stops a
    session) with none under way: it stopped nothing, and it was told "Not started yet ...
    then press twice", an answer to a start nobody asked for, as if the long press had been
    one. Nothing is said now; a double press still hears it."""
    heard = Heard()
    rig = make_rig(tmp_path)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=heard)
    link = rig.app.link
    assert pump_link_until(link, lambda: link._new_roster is not None)
    link._new_roster = None  # still on its way (a courier slow at start-up)
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    rig.run_for(1.0)  # the reset press's sequence is over: the next presses are the session's
    not_started = Prompts.for_language("en").file.prompts.not_started_walkers
    said = len(heard.said)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 2.5)  # a long press: stop
    rig.run_for(3.5)
    assert runner.state is SessionState.IDLE and runner.session is None
    assert not_started not in heard.said[said:], heard.said[said:]
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)  # a double press: start
    rig.button.press_at(now + 0.35, now + 0.5)
    rig.run_for(1.5)
    assert runner.session is None
    assert heard.said[-1] == not_started
    assert rig.state == "ARMED"
    detach_session(rig.app, runner)
