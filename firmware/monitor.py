"""The real-time loop: IMU batch → detector → safety controller, in one thread.

Each iteration also reads the buttons — the reset button's presses become
reset presses or a call for help (:mod:`firmware.presses`), and any press of
the optional help button is a call for help — and reads the relay's contact
back (one pin read, when it is wired) and hands it to the controller, which
compares it with what it asked for.

The loop is paced by the IMU itself — its data-ready interrupt, or polling
its FIFO (:mod:`firmware.pacing`) — so there is no second timer to drift
against the sensor's own sample clock. Nothing
here touches disk or network: events leave through a non-blocking link to
the courier process. Any exception that escapes the controller releases the
relay before it propagates — the last thing a dying loop does is make the
treadmill safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.clock import Clock
from core.samples import ImuSample
from firmware.failure_log import describe
from firmware.pacing import Pacing, PollPacing
from firmware.presses import (
    PATTERN_GAP_S,
    EdgeFeed,
    HelpPattern,
    HelpSource,
    ResetButtonPatterns,
    ResetPress,
)
from firmware.safety import RESTART_MAY_CURE, SafetyController, SafetyState
from hal.errors import ImuError
from hal.interfaces import Button, Imu, LostReleases, PressEdges, Relay, RelaySense

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoopStats:
    iterations: int = 0
    samples: int = 0
    empty_reads: int = 0
    imu_errors: int = 0


class Monitor:
    """Runs the safety loop until told to stop."""

    def __init__(
        self,
        *,
        imu: Imu,
        relay: Relay,
        button: Button,
        controller: SafetyController,
        clock: Clock,
        read_timeout_s: float,
        relay_sense: RelaySense | None = None,
        pacing: Pacing | None = None,
        help_button: Button | None = None,
        press_gap_s: float = PATTERN_GAP_S,
    ) -> None:
        """``help_button``: the optional dedicated help button. ``press_gap_s``: the gap that
        ends a press sequence (the session's double-press gap, so both read the same ones)."""
        self.imu = imu
        self.relay = relay
        self.relay_sense = relay_sense
        """The relay's contact read back; None when it is not wired."""
        self.button = button
        self.help_button = help_button
        self._edges: PressEdges | None = button if isinstance(button, PressEdges) else None
        """Without release edges (a bare test button) every press is a reset press."""
        self._lost_releases: LostReleases | None = (
            button if isinstance(button, LostReleases) else None
        )
        self._patterns = ResetButtonPatterns(gap_s=press_gap_s)
        self._help_lost: LostReleases | None = (
            help_button if isinstance(help_button, LostReleases) else None
        )
        self._help_up_looks = 0
        """Looks in a row that found the help button up while a press of it was heard down."""
        self._deferred: tuple[float, float] | None = None
        """A press down by its edges that a look found up: when it went down and that look's
        reading (its release was on its way, or it was lost)."""
        self.press_edges = EdgeFeed()
        """The reset button's edges, passed on after the loop read them (the session's)."""
        self.chooses_walker: Callable[[], bool] | None = None
        """Whether a double press in STANDBY is the session runner's now (it chooses the next
        walker while no session is under way); None or False: nobody's, so the controller
        refuses it as two presses ("press once and hold") rather than nobody answering it.
        Asked on this thread, only while a press sequence is open in STANDBY."""
        self.controller = controller
        self.clock = clock
        self.read_timeout_s = read_timeout_s
        self.pacing: Pacing = pacing or PollPacing(read_timeout_s, why="no data-ready line")
        """What wakes the loop to read: the IMU's data-ready interrupt or a timer."""
        self.stats = LoopStats()
        self.on_iteration: list[Callable[[Monitor], None]] = []
        """Run after each iteration on the loop thread (e.g. the watchdog ping); must not block."""
        self.last_batch: Sequence[ImuSample] = ()
        """The samples this iteration read (empty on a timeout or an IMU error), for hooks
        that measure (e.g. the guided session's step counter). Read-only for them."""

    def start(self) -> None:
        """Start the IMU; a failure to start is a FAULT, not a crash."""
        now = self.clock.monotonic()
        self.controller.start(now)
        try:
            self.imu.start()
        except ImuError as exc:
            log.error("IMU failed to start: %s", exc)
            self.controller.on_imu_error(exc, self.clock.monotonic())

    def step(self) -> None:
        """One iteration: handle the buttons, read what the IMU has, decide, read the contact
        back (last, so it sees this iteration's heartbeat edge).

        The buttons come first so that a reset press that arms is followed by its first
        heartbeat edge in the same iteration, while the walker still holds the button."""
        controller = self.controller
        self.last_batch = ()
        self._read_buttons()
        try:
            batch = self.pacing.read(self.imu)
        except ImuError as exc:
            self.stats.imu_errors += 1
            controller.on_imu_error(exc, self.clock.monotonic())
        else:
            now = self.clock.monotonic()
            self.last_batch = batch
            if batch:
                self.stats.samples += len(batch)
                controller.on_samples(batch, now)
            else:
                self.stats.empty_reads += 1
                controller.on_idle(now)
        if self.relay_sense is not None:
            controller.on_contact(self.relay_sense.contact_closed, self.clock.monotonic())
        self.stats.iterations += 1
        for hook in self.on_iteration:
            hook(self)

    def _read_buttons(self) -> None:
        controller = self.controller
        edges_source = self._edges
        if edges_source is None:
            for pressed_at in self.button.take_presses():
                controller.on_button(pressed_at, self.clock.monotonic())
        else:
            self.button.take_presses()  # the edges say it all; keep the other queue empty
            edges = edges_source.take_edges()
            # The usual iteration: no edge, no press down, no sequence open. Nothing to pass
            # on, and the patterns would complete nothing: neither the clock nor they are asked.
            if edges or not self._patterns.idle:
                now = self.clock.monotonic()
                # The edges that came since the take, before this reading, are taken too: a
                # press let go in between, short of the hold, was judged down at the reading
                # and held past the hold, and armed with the button up (the edges are stamped
                # on gpiozero's thread, which may run between the take and the reading).
                late = edges_source.take_edges()
                if late:
                    edges = [*edges, *late]
                # A press down by its edges while the button reads up (one pin read): its
                # release is still on its way, stamped on gpiozero's thread before this reading
                # and queued after the take. Judged at this reading, the press was held past the
                # hold and armed with the button up (a FAULT at the first edge, after a trip an
                # "I'm OK" and a call for help lost); it is judged at the next look, with it.
                # One look only: a release still not there then was lost (a pin factory's
                # bounce filter drops the release of a tap shorter than its bounce time), and
                # the press, left down, was judged held at the next press, a call for help's
                # second: it armed, told the caregivers "I'm OK", and the call was lost. It
                # is let go as of the look that found the button up.
                down_at = edges[-1][0] if edges and edges[-1][1] else None
                if not edges:
                    down_at = self._patterns.down_at
                judged = now
                if down_at is None or self.button.is_pressed:
                    self._deferred = None
                elif self._deferred is not None and self._deferred[0] == down_at:
                    edges = [*edges, (self._deferred[1], False)]
                    self._deferred = None
                    # The button is told: left holding it down, gpiozero heard no change at
                    # the next press, which gave no press edge (a call for help's second lost).
                    if self._lost_releases is not None:
                        self._lost_releases.release_lost()
                else:
                    self._deferred = (down_at, now)
                    judged = down_at
                self.press_edges.publish(edges)
                state = controller.state
                # FAULT and STARTING too: nothing arms there (the table has no edge), but a
                # press is answered, refused, as it is where it could arm (a press held for
                # the chirp in STARTING heard nothing while held, and nothing after).
                answered = state is not SafetyState.ARMED
                chooses = self.chooses_walker
                # A double press chooses the walker only if begun in STANDBY: one made in
                # STARTING and over after it heard nothing (the session ignores a press from
                # before STANDBY), so it is reported and refused as not ready.
                walkers = (
                    controller.since
                    if state is SafetyState.STANDBY and chooses is not None and chooses()
                    else None
                )
                for outcome in self._patterns.feed(
                    edges, judged, armable=answered, sessions_double_after=walkers
                ):
                    match outcome:
                        case ResetPress(pressed_at=pressed_at, held=held, presses=presses):
                            controller.on_button(pressed_at, now, held=held, presses=presses)
                        case HelpPattern(first_press=first):
                            controller.on_help(HelpSource.RESET_BUTTON, first, now)
        help_button = self.help_button
        if help_button is not None:
            for pressed_at in help_button.take_presses():
                controller.on_help(HelpSource.HELP_BUTTON, pressed_at, self.clock.monotonic())
            # A press heard down while the button reads up at two looks in a row (one pin read
            # a look, only then): its release was lost (a pin factory's bounce filter), and
            # gpiozero, still hearing the button down, heard no change at the next press: a
            # walker's second call for help went out as nothing. The button is told.
            lost = self._help_lost
            if lost is not None and lost.heard_down:
                if help_button.is_pressed:
                    self._help_up_looks = 0
                elif self._help_up_looks:
                    self._help_up_looks = 0
                    lost.release_lost()
                else:
                    self._help_up_looks = 1
            elif self._help_up_looks:
                self._help_up_looks = 0  # its release came: the next press starts afresh

    def run(self, stop: threading.Event | None = None, until: float | None = None) -> None:
        """Loop until ``stop`` is set or the clock reaches ``until``.

        Exceptions other than IMU errors are bugs: the controller is told
        (relay released, FAULT event), then the relay is released once more
        directly and the exception propagates so systemd restarts us.
        """
        try:
            while (stop is None or not stop.is_set()) and (
                until is None or self.clock.monotonic() < until
            ):
                self.step()
        except BaseException as exc:
            self.relay.release()
            if not isinstance(exc, KeyboardInterrupt | SystemExit):
                try:
                    self.controller.fail(
                        f"monitor loop crashed: {describe(exc)}",
                        self.clock.monotonic(),
                    )
                except Exception:  # pragma: no cover - best effort on the way down
                    log.exception("could not record the crash")
            raise

    @property
    def restart_may_cure(self) -> bool:
        """In FAULT for a reason a fresh process may cure (a wedged sensor or bus), and for
        none it cannot: the fault holding FAULT now, not the one that entered it (a contact
        found welded while already in FAULT for a silent sensor has no transition), and no
        contact disagreement beside it, which a restart would only find again (its FAULT
        and alert sent twice)."""
        controller = self.controller
        return controller.fault_kind in RESTART_MAY_CURE and controller.contact_fault is None

    @property
    def healthy(self) -> bool:
        """True while the loop is producing decisions (ARMED, STANDBY or TRIPPED)."""
        return self.controller.state in (
            SafetyState.ARMED,
            SafetyState.STANDBY,
            SafetyState.TRIPPED,
        )
