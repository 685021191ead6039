"""The loop's reset button on an iteration with nothing pressed: nothing asked, nothing lost.

Most iterations see no edge, no press down and no sequence open; the loop then passes nothing
on and asks neither the clock nor the press patterns (issue 15 item 8, the monitor's CPU).
A press is still a reset press at the iteration it was, and a call for help still goes out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.protocol.events import EventType
from tests.app_support import close_rigs, make_rig  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("close_rigs")


def test_the_patterns_are_asked_only_while_a_press_is_under_way(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    monitor = rig.app.monitor
    fed: list[float] = []
    feed = monitor._patterns.feed

    def counted(edges: Any, now: float, *, armable: bool, sessions_double_after: Any) -> Any:
        fed.append(now)
        return feed(edges, now, armable=armable, sessions_double_after=sessions_double_after)

    monitor._patterns.feed = counted  # type: ignore[method-assign]
    rig.run_for(1.0)
    assert fed == []  # no edge, nothing open: not asked

    # A press held past the chirp arms at the iteration its hold was reached, as before.
    pressed = rig.clock.monotonic()
    rig.press_reset(hold=0.5)
    assert rig.state == "ARMED"
    armed = rig.app.controller.transitions[-1]
    assert pressed + 0.2 <= armed.t < pressed + 0.5  # within the hold, not at its release
    assert fed and fed[0] >= pressed
    rig.run_for(2.0)  # released; the sequence's pause runs out
    fed.clear()
    rig.run_for(1.0)
    assert fed == []

    # Three quick presses: help, while armed, through the same patterns.
    now = rig.clock.monotonic()
    for k in range(3):
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.1)
    rig.run_for(2.0)
    assert EventType.HELP in [e.type for e in (s.event for s in rig.app.stored_events())]
    assert rig.state == "ARMED"
