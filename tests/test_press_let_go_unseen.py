"""A reset press let go before the loop found it held long enough is no held press.

The loop reads the reset button once an iteration. A press let go just after it had been
down :data:`~firmware.presses.ARM_HOLD_S`, before the loop's next look, reached that look as
two facts at once: held long enough, and let go. It was reported as held (as still down),
so the controller armed with the button already up: the latch, which closes only while the
button is down as the heartbeat edges begin, stayed open under an ARMED state. Without the
contact read back nothing said so, and the next press of the button closed the latch — the
second press of a call for help started the belt, and the call itself was lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.protocol.events import EventType
from firmware.presses import ARM_HOLD_S, PATTERN_GAP_S, HelpPattern, ResetButtonPatterns, ResetPress
from tests.app_support import Rig, TripAt, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def test_a_press_let_go_before_the_look_that_finds_it_held_is_not_held() -> None:
    """Down at 0 s, looked at 10 ms short of the hold, let go 5 ms past it and looked at once
    more: the button was up at that look, so no held reset press. The sequence goes on, and
    ends as any press let go before the chirp: refused as not held."""
    patterns = ResetButtonPatterns()
    assert patterns.feed([(0.0, True)], 0.0, armable=True) == []
    assert patterns.feed([], ARM_HOLD_S - 0.01, armable=True) == []
    let_go = ARM_HOLD_S + 0.005
    assert patterns.feed([(let_go, False)], let_go + 0.001, armable=True) == []
    ended = patterns.feed([], let_go + PATTERN_GAP_S + 0.01, armable=True)
    assert ended == [ResetPress(0.0, held=False)]


def test_such_a_press_still_starts_a_call_for_help() -> None:
    """The first press of a call for help a little long, let go before the loop found it held:
    it is the first of three, and the third asks for help."""
    patterns = ResetButtonPatterns()
    patterns.feed([(0.0, True)], 0.0, armable=True)
    patterns.feed([], ARM_HOLD_S - 0.01, armable=True)
    let_go = ARM_HOLD_S + 0.005
    out = patterns.feed([(let_go, False), (0.7, True), (0.85, False)], 0.86, armable=True)
    assert out == []
    assert patterns.feed([(1.1, True)], 1.1, armable=True) == [HelpPattern(0.0, 1.1)]


def _tripped(tmp_path: Path) -> Rig:
    """Without the contact read back: armed at 1 s, tripped at 2 s (the contact open)."""
    rig = make_rig(tmp_path, relay_sense_wired=False, detector=TripAt(2.0))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    return rig


def _press_let_go_before_the_loop_finds_it_held(rig: Rig) -> None:
    """Down now; the loop looks at the button until just before it has been down the hold
    time; it is let go before the loop's next look (the walker's press a few ms longer than
    the hold, or an iteration a little late)."""
    monitor = rig.app.monitor
    rig.button.down()
    down_at = rig.clock.monotonic()
    while rig.clock.monotonic() - down_at < ARM_HOLD_S:  # each look happens before the hold
        monitor.step()
    rig.button.up()


def test_after_a_trip_a_call_for_help_whose_first_press_is_let_go_unseen_starts_no_belt(
    tmp_path: Path,
) -> None:
    """After a trip the walker calls for help: three quick presses, the first let go just past
    the hold time, before the loop's next look. It armed (and told the caregivers "I'm OK")
    with the button up, the latch open; the second press closed it: the belt started, and
    the call for help was never sent. Now the first press is no arming press: the three are
    a call for help, the belt stays stopped."""
    rig = _tripped(tmp_path)
    closed = list(rig.hardware.history)
    _press_let_go_before_the_loop_finds_it_held(rig)
    now = rig.clock.monotonic()
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    assert rig.hardware.history == closed  # the contact never closed again
    assert rig.state == "TRIPPED"
    events = rig.events()
    assert EventType.HELP in events
    assert EventType.OK not in events  # nobody was told the walker is fine


def test_a_lone_such_press_is_refused_as_let_go_before_the_chirp(tmp_path: Path) -> None:
    """The same press alone: refused, the walker told to hold until the chirp; not armed."""
    rig = _tripped(tmp_path)
    _press_let_go_before_the_loop_finds_it_held(rig)
    rig.run_for(1.5)
    controller = rig.app.controller
    assert rig.state == "TRIPPED"
    assert "let go before the chirp" in controller.reason, controller.reason
    rig.press_reset()  # held past the chirp: armed, the latch closed
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
