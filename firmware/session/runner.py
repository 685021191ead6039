"""The guided-session state machine, run on the monitor's loop and its clock.

States and the only transitions allowed (:data:`SESSION_TRANSITIONS`; the
same block is in docs/sessions.md, and a test keeps the three equal)::

    stateDiagram-v2
        IDLE --> RUNNING : start (armed)
        IDLE --> PAUSED : start (not armed)
        IDLE --> BALANCE : start (standby, balance check)
        BALANCE --> PAUSED : check done
        BALANCE --> PAUSED : pause
        BALANCE --> PAUSED : trip or fault
        BALANCE --> RUNNING : armed during the check
        BALANCE --> FINISHED : stop
        RUNNING --> PAUSED : pause
        RUNNING --> PAUSED : trip or fault
        RUNNING --> FINISHED : plan ends
        RUNNING --> FINISHED : stop
        PAUSED --> PAUSED : pause
        PAUSED --> PAUSED : resume (not armed)
        PAUSED --> RUNNING : resume (armed)
        PAUSED --> RUNNING : re-armed
        PAUSED --> FINISHED : stop
        PAUSED --> FINISHED : max pause
        FINISHED --> RUNNING : start (armed)
        FINISHED --> PAUSED : start (not armed)
        FINISHED --> BALANCE : start (standby, balance check)

"pause", "resume", "start" and "stop" come from the walker (a press pattern)
or the local CLI; "trip or fault" and "re-armed" from the safety
controller's state; "max pause" is ``session.max_pause_s`` spent PAUSED. Why
the session is paused is a :class:`PauseCause`. A transition the table
forbids is a bug here: it is logged and refused (the session stays where it
was; it never raises into the monitor loop).

Safety, by construction:

* The runner has no reference to the relay. It sees the safety controller
  only through :class:`SafetyView` (state, when it was entered, the
  transition log) and plays cues on the buzzer, whose patterns sit below
  ``fault`` and ``alarm``.
* Starting a session never arms: a session started while the monitor is in
  STANDBY (or TRIPPED) waits, paused, until the walker arms with the reset
  button as always. The plan's clock only runs while the controller is ARMED.
* The standing balance check (``session.balance_check``) runs only in
  STANDBY, before the walk: a session started in STANDBY begins with it (its
  cues, 5 s to settle, 30 s measured, optionally 30 s more with the eyes
  closed) and then waits for arming as before. If the monitor leaves
  STANDBY — the walker arms with the reset button, or it faults — the check
  stops at once on that iteration and is recorded as interrupted; its
  samples come only from STANDBY iterations. It measures, it never decides.
* A trip (or a fault) pauses the session on the iteration it happens;
  re-arming resumes it, with the current interval's cue repeated a moment
  after the arming chirp. A pause by the walker stays until the walker
  resumes. What the detector decides later in the trip's incident (a fall
  confirmed, a no-recovery) counts in the session the trip happened in, also
  once that session has ended: its record is amended and handed over again.
* Button press patterns (:mod:`.gestures`) count only when the whole pattern
  was made while ARMED, after the press that armed: the first press of a
  pattern must come after the controller entered ARMED. The loop reads the
  button first (:mod:`firmware.presses`: a reset press is a sequence's first
  press held until the chirp, three quick presses call for help) and passes
  its edges on. A double press in STANDBY, with no session under way and neither
  press held to the chirp, chooses the next walker (it cannot arm: this runner
  has no relay, and the loop never takes a two-press sequence for a reset
  press); in TRIPPED it does nothing at all.
  Every pattern is in one table: docs/safety.md, "Button press patterns".

Gait and sway are computed on a measurement thread
(:mod:`firmware.gait.worker`): the loop hands it references to the samples it
read and collects the figures a later iteration; a session's last record
waits for its last interval's figures (at most :data:`FINAL_WAIT_S`).

All methods run on the real-time thread except :meth:`SessionRunner.request`
(any thread: a non-blocking put) and :meth:`SessionRunner.snapshot` (reads).

The runner decides *when*; its parts, which it owns and calls on the same thread, do the
rest: :class:`~firmware.session.cue_player.CuePlayer` (cues, played again while they hold),
:class:`~firmware.session.safety_words.SafetyWords` (the spoken safety prompts),
:class:`~firmware.session.walker_choice.WalkerChooser` (the next walker, by the button),
:class:`~firmware.session.balance_check.BalanceCheck` (the standing check's steps),
:mod:`.measuring` (the measurement thread's samples and figures), :mod:`.recording` (the
session's tally and its record); :mod:`.states` holds the table above, :mod:`.attach` the
wiring (docs/sessions.md, "The runner's parts").
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.protocol.messages import (
    Direction,
    SessionRecord,
    SessionStatus,
)
from core.protocol.walker import DEFAULT_WALKER_ID, Walker
from core.wallclock import SystemWallClock, WallClock
from firmware.detection.base import Detection, DetectionKind
from firmware.gait.worker import (
    Measurements,
)
from firmware.presses import ARM_HOLD_S, EdgeFeed
from firmware.safety import (
    Detected,
    SafetyState,
    Transition,
)
from firmware.session.attach import attach_session, detach_session, prompt_cache_dir
from firmware.session.balance_check import (
    BALANCE_MEASURE_S,
    BALANCE_SETTLE_S,
    BalanceCheck,
    CheckStep,
)
from firmware.session.config import SessionConfig
from firmware.session.control import stopped_message
from firmware.session.cue_player import CuePlayer, CueRecord, CueScene
from firmware.session.cues import (
    TEXT,
    Cue,
    MayGoQuiet,
    PreparesPrompts,
    Speaker,
    cue_for,
    turns_at,
)
from firmware.session.gestures import Gesture, GestureKind, GestureRecognizer
from firmware.session.measuring import feed_samples, follow_interval, take_figures
from firmware.session.plan import Plan
from firmware.session.recording import (
    CountedTrip,
    IntervalLog,
    SessionTally,
    follow_wall_clock,
    session_record,
    wall_text,
)
from firmware.session.safety_view import SafetyView
from firmware.session.safety_words import SafetyWords
from firmware.session.states import (
    SESSION_TRANSITIONS,
    WALKER_CAUSES,
    PauseCause,
    SessionState,
    SessionTrigger,
    WalkerCause,
)
from firmware.session.steps import StepCounts, StepDetector
from firmware.session.voice import Prompts
from firmware.session.walker_choice import WalkerChoice, WalkerChooser
from hal.buzzer_patterns import Pattern
from hal.interfaces import Buzzer, PressEdges

if TYPE_CHECKING:
    from firmware.link.messages import WalkerRoster
    from firmware.monitor import Monitor
    from firmware.session.control import ControlServer

log = logging.getLogger(__name__)

__all__ = [  # the runner's interface, also what moved to its parts and is still taken from here
    "BALANCE_MEASURE_S",
    "BALANCE_SETTLE_S",
    "SESSION_TRANSITIONS",
    "WALKER_CAUSES",
    "CueRecord",
    "IntervalLog",
    "PauseCause",
    "SafetyView",
    "SessionRunner",
    "SessionState",
    "SessionTrigger",
    "WalkerCause",
    "WalkerChoice",
    "attach_session",
    "detach_session",
    "prompt_cache_dir",
    "session_record",
]

ONE_MINUTE_S = 60.0
WARN_INTERVALS_LONGER_THAN_S = 120.0
TURN_AHEAD_S = 15.0
"""Plan seconds before an interval that turns the walker round (backward <-> forward) at which
they are told to get ready: slow the belt and hold the rail. The turn's own words ("Slow the
belt and hold the rail before you turn") came only as the turn was due, its beeps at once, so
a walker going by the beeps turned on a belt still running, and the time to get ready was
taken from the turn. 15 s: the prompt is some 4 s of speech at 150 words a minute; reaching
the rail and bringing a belt at 0.5 mph (0.22 m/s) down takes a few seconds more; an older
walker with sore knees, walking backward blind, needs a margin on top."""
RESUME_CUE_DELAY_S = 1.0
"""After re-arming, the interval's cue waits this long so the arming chirp is heard first."""
FINAL_WAIT_S = 30.0
"""A finished session's last record waits at most this long (real time) for the figures
of its last interval from the measurement thread."""


_PAUSE_TEXT = {
    PauseCause.WAITING_FOR_ARMING: "waiting for arming: press the reset button to arm",
    PauseCause.TRIP: "paused by a trip: re-arm with the reset button to resume",
    PauseCause.BUTTON: "paused by the walker",
    PauseCause.CLI: "paused by the walker",
}

_FINISH_STATUS: dict[SessionTrigger, SessionStatus] = {
    SessionTrigger.PLAN_ENDS: "completed",
    SessionTrigger.STOP: "stopped",
    SessionTrigger.MAX_PAUSE: "abandoned",
}
"""The record's ``status`` for each way a session ends."""


class SessionRunner:
    """A guided session on the monitor loop. Add it to ``monitor.on_iteration``.

    ``record`` receives the session's :class:`~core.protocol.messages.SessionRecord`
    at each interval's end, on pause, and once more with ``final=True``; it must
    not block (:meth:`firmware.link.endpoint.CourierLink.submit_session` is a put).
    """

    def __init__(
        self,
        plan: Plan,
        *,
        safety: SafetyView,
        buzzer: Buzzer,
        device_id: str,
        config: SessionConfig | None = None,
        button: PressEdges | None = None,
        record: Callable[[SessionRecord, bool], None] | None = None,
        speaker: Speaker | None = None,
        prompts: Prompts | None = None,
        time_scale: float = 1.0,
        measurements: Measurements | None = None,
        new_plans: Callable[[], dict[str, Plan | None] | None] | None = None,
        new_roster: Callable[[], tuple[WalkerRoster, bool] | None] | None = None,
        walker_chosen: Callable[[str], None] | None = None,
        session_walker: Callable[[str | None], None] | None = None,
        wall: WallClock | None = None,
        caregivers_away: Callable[[], bool] | None = None,
        caregivers_undecided: Callable[[], bool] | None = None,
    ) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self.plan = plan
        """The plan of the session under way, or of the next one when none is."""
        self.configured_plan = plan
        """The config's plan: what an assignment of "no plan" goes back to."""
        self._pending_plans: dict[str, Plan] = {}
        """Plans assigned since each walker's last start (``cmd/plan``, ``retroguard plan
        set``), by walker: one becomes :attr:`plan` at its walker's next start, never during a
        session."""
        self._walker_plans: dict[str, Plan] = {}
        """The plan each walker's sessions use (absent: the config's)."""
        self._new_plans = new_plans
        self._session_walker = session_walker
        """Told the walker of the session under way whenever it changes (None: none under
        way): the events the loop records meanwhile name them (the link stamps them)."""
        self._told_walker: str | None = None
        self._told_session: SessionTally | None = None
        self._told_state: SessionState | None = None
        self.time_scale = time_scale
        """Plan seconds per loop second: 1 for real sessions; the demo compresses time."""
        self.control: ControlServer | None = None
        self.speaker = speaker
        self.config = config or SessionConfig()
        self.device_id = device_id
        self._safety = safety
        self._buzzer = buzzer
        self._button = button
        self._record = record
        self._wall = wall if wall is not None else SystemWallClock()
        """The wall clock the record's times are read from (only those: timing is monotonic)."""
        self._voice = speaker
        """The speaker given, heard or not (it renders the plans' prompts either way)."""
        self._audible = speaker if isinstance(speaker, MayGoQuiet) else None
        """The speaker again when it can go quiet (a player that watches the sound cards):
        :attr:`_speaker` follows its ``audible`` once a tick."""
        self._speaker = speaker
        """The speaker while it can be heard, else None: then every cue is beeps only (the
        walker's number, not a chirp). Set once a tick on this thread (:meth:`tick`), so one
        tick's checks all see the same answer while the player's thread changes its mind."""
        self._follow_voice()
        self.prompts = prompts or Prompts.for_language(self.config.language)
        """The spoken prompts' sentences (the interval, the time left, the turn, the end)."""
        self._gestures = GestureRecognizer(
            double_gap_s=self.config.double_press_gap_s, long_press_s=self.config.long_press_s
        )
        self.steps = StepDetector()
        self.state = SessionState.IDLE
        self.pause_cause: PauseCause | None = None
        """Why the session is PAUSED (None otherwise): decisions read this."""
        self.pause_reason = ""
        """The same in words, for the CLI's status and the log."""
        self.session: SessionTally | None = None
        self.finished: deque[SessionRecord] = deque(maxlen=16)
        """Final records of the sessions finished since start, newest last."""
        self._requests: queue.SimpleQueue[tuple[str, queue.SimpleQueue[tuple[bool, str]] | None]]
        self._requests = queue.SimpleQueue()
        self._last_now: float | None = None
        self._last_counts = StepCounts()
        self._last_transition: Transition | None = None
        self._paused_at = 0.0
        self._pending_cue: tuple[float, Cue] | None = None
        self._belt_stopped = False
        """The session resumed (its resume cue pending) after the monitor left ARMED during
        the pause: the relay stopped the belt, and the treadmill waits for its start button."""
        self._seen_transitions = False
        self._last_detection: Detection | None = None
        self._trip: CountedTrip | None = None
        """The newest trip counted in a session while its incident is open, whether or not
        that session is still under way (one incident at most is open: a trip needs ARMED,
        and re-arming ends the incident)."""
        self.measurements = measurements
        """The gait and sway measurement thread's loop-side end (None: not measured)."""
        self._balance = BalanceCheck(measurements)
        """The standing balance check's step under way and its measurement job."""
        self._final_due: float | None = None
        """Real (monotonic) time until which the final record waits for figures."""
        self._player = CuePlayer(buzzer, self.prompts, self._cue_scene)
        """The session's cues on the buzzer and the speaker, played again while they hold."""
        self._chooser = WalkerChooser(safety, buzzer, self.prompts, new_roster, walker_chosen)
        """The walker profiles, and the next session's walker chosen with the button."""
        self._safety_words = SafetyWords(
            safety, buzzer, self.prompts, caregivers_away, caregivers_undecided
        )
        """The spoken safety prompts (not worn, help, refused, trip, no caregiver)."""
        self._gesturing = False
        """A press held or a pattern open at the last look (:attr:`GestureRecognizer.idle`):
        the gestures are fed again even without an edge."""
        self._edge_backlog = button.backlog if isinstance(button, EdgeFeed) else None
        """The reset button's edges not yet taken (an :class:`EdgeFeed`'s): its truth says one
        waits. None for another kind of button (a test's): every tick then takes its edges."""
        self._answers = measurements.answers if measurements is not None else None
        """The measurement thread's answers not yet taken: empty, :meth:`_collect` has none."""

    # ------------------------------------------------------------ any thread

    def request(
        self, command: str, reply: queue.SimpleQueue[tuple[bool, str]] | None = None
    ) -> None:
        """Ask for ``start``, ``pause``, ``resume``, ``toggle``, ``stop`` or ``status``.

        Non-blocking; the loop answers ``(ok, message)`` on ``reply`` at its next iteration.
        """
        self._requests.put_nowait((command, reply))

    def snapshot(self) -> dict[str, Any]:
        """The session as the CLI's ``status`` shows it (built on the loop thread)."""
        s = self.session
        data: dict[str, Any] = {
            "state": self.state.value,
            "plan": self.plan.name,
            "walker": (s.walker if s is not None and self.under_way else self.walker).name,
        }
        upcoming = self.next_plan or self._plan_of(self.walker.id)
        if self.next_plan is not None or upcoming != self.plan:
            data["next_plan"] = upcoming.name  # the chosen walker's next session's
        if self.pause_reason:
            data["pause_reason"] = self.pause_reason
        if s is not None:
            data["id"] = s.id
            data["plan_t"] = round(s.plan_t, 1)
            data["planned_s"] = round(s.plan.duration_s, 1)
            if s.current < len(s.intervals):
                i = s.intervals[s.current]
                data["interval"] = f"{i.index + 1}/{len(s.intervals)} {i.direction} {i.speed}"
            data["steps"] = sum(i.steps for i in s.intervals)
        check = self._check
        if check is not None:
            data["balance_check"] = (
                f"{check.condition}, ends in {check.ends - (self._last_now or check.started):.0f} s"
            )
        return data

    def interval_now(self) -> tuple[int, Direction] | None:
        """The interval running now, ``(index, direction)``; None unless RUNNING (the status
        LED shows it: :class:`firmware.status_light.StatusLight`)."""
        s = self.session
        if self.state is not SessionState.RUNNING or s is None:
            return None
        return s.current, self.plan.intervals[s.current].direction

    # -------------------------------------------------------- loop thread

    def __call__(self, monitor: Monitor) -> None:
        """The ``on_iteration`` hook."""
        self.tick(monitor.clock.monotonic(), monitor.last_batch)

    def _follow_voice(self) -> None:
        """Words while the speaker can be heard, beeps while it cannot: one attribute read a
        tick (the player's thread reads the sound cards, never this one)."""
        audible = self._audible
        if audible is not None:
            self._speaker = audible if audible.audible else None

    def tick(self, now: float, batch: Sequence[Any] = ()) -> None:
        """One loop iteration: measure, listen, follow the safety state, advance the plan.

        With no session under way (IDLE, FINISHED) there is nothing to measure or advance:
        the steps are not counted (nothing reads them until a start, which takes their
        count from there), the safety state is only followed, and the press patterns are
        looked at only when an edge came or a pattern is still open. Nothing waits for a
        later iteration: a press, a command or a finished pattern is handled on the iteration it
        would have been before.

        Most iterations of a monitor nobody walks on find nothing due: no session, no trip to
        follow, no edge waiting or pattern open, no command, no measurement answer, the link
        told the walker. Those take :meth:`_idle_tick`, which does what this method would do
        then (the safety log's bookkeeping, plans and roster from the link, the not-worn
        prompt) with one look at each input rather than a call into each part."""
        self._follow_voice()
        state = self.state
        if (
            (
                state is SessionState.FINISHED
                or (state is SessionState.IDLE and self.session is None)
            )
            and self._trip is None
            and not self._gesturing
            and self._requests.empty()
            and self.session is self._told_session
            and state is self._told_state
            and self._final_due is None
            and not self._player.retries
            and (self._edge_backlog is not None and not self._edge_backlog)
            and (self._answers is None or self._answers.empty())
        ):
            self._idle_tick(now)
            return
        chooser = self._chooser
        # What the link brought first: a start this tick is judged on the newest roster.
        self._take_new_plan()  # first: the roster's prompt preparation then keeps its prompts
        if chooser.take_roster():
            self._prepare_prompts()  # the names are rendered (and kept) before anyone cycles
        under_way = self.under_way
        if under_way:
            for sample in batch:
                self.steps.update(sample)
        self._follow_safety(now, under_way)
        if under_way:
            self._measure(batch)
        if self._button is not None:
            edges = self._button.take_edges()
            if edges or self._gesturing:
                for gesture in self._gestures.feed(edges, now):
                    self._on_gesture(gesture, now)
                self._gesturing = not self._gestures.idle
        while not self._requests.empty():  # an empty get_nowait() raises: 0.66 µs a tick
            command, reply = self._requests.get_nowait()  # this thread alone takes from it
            ok, message = self._command(command, now)
            if reply is not None:
                reply.put_nowait((ok, message))
        if self.session is not None and self.state is not SessionState.FINISHED:
            self._advance(now)
        player = self._player
        if player.sounding is not None:  # the usual tick: one identity test
            player.watch(now)
        if chooser.beep is not None:
            chooser.watch_beep(now, self.under_way)
        if player.retries:  # the usual tick: one truth test
            player.retry(now, self._speaker)
        self._tell_session_walker()
        self._collect()
        self._safety_words.tell(self._speaker)
        self._last_now = now

    def _idle_tick(self, now: float) -> None:
        """:meth:`tick` when nothing is due (it checked): what :meth:`_follow_safety` does with
        no session under way and no trip to follow, then the link's plans and roster and the
        not-worn prompt, as the full tick would."""
        safety = self._safety
        transitions = safety.transitions
        if transitions:
            self._last_transition = transitions[-1]
        self._seen_transitions = True
        self._last_detection = safety.last_detection
        player = self._player
        if player.sounding is not None:  # the end of the session's cue, until it plays out
            player.watch(now)  # cut short and still due: the next tick is a full one
        chooser = self._chooser
        if chooser.beep is not None:
            chooser.watch_beep(now, self.under_way)
        self._take_new_plan()
        if chooser.take_roster():
            self._prepare_prompts()  # the names are rendered (and kept) before anyone cycles
        if self._speaker is not None:
            self._safety_words.tell(self._speaker)
        self._last_now = now

    def _take_new_plan(self) -> None:
        if self._new_plans is None:
            return
        new = self._new_plans()
        if new is None:
            return
        for walker, plan in new.items():
            self.assign_plan(plan, walker)

    @property
    def next_plan(self) -> Plan | None:
        """The plan assigned to the chosen walker since their last start (None: none), which
        their next session uses."""
        return self._pending_plans.get(self.walker.id)

    def assign_plan(self, plan: Plan | None, walker: str = DEFAULT_WALKER_ID) -> None:
        """Use ``plan`` (None: the config's) from ``walker``'s next session start on; the loop
        thread."""
        chosen = self.configured_plan if plan is None else plan
        self._pending_plans[walker] = chosen
        log.info("walker %s's next session's plan: %s", walker, chosen.describe())
        self._prepare_prompts()

    def _prepare_prompts(self) -> None:
        """Have the speaker render what the plans in use can say, and the walkers' names, and
        prune the rest (a put: its thread renders and prunes)."""
        voice = self._voice  # heard or not yet: a speaker plugged in later speaks at once
        if isinstance(voice, PreparesPrompts):
            plans = (self.plan, *self._walker_plans.values(), *self._pending_plans.values())
            if len(self.walkers) == 1:
                voice.prepare(plans)  # one walker: the button has nobody to name
                return
            names = tuple(self.prompts.walker(w.name) for w in self.walkers)
            voice.prepare(plans, names)

    def _plan_of(self, walker: str) -> Plan:
        return self._walker_plans.get(walker, self.configured_plan)

    @property
    def under_way(self) -> bool:
        return self.state in (SessionState.RUNNING, SessionState.PAUSED, SessionState.BALANCE)

    def chooses_walker(self) -> bool:
        """A double press in STANDBY is this runner's now: it chooses the next walker, which
        it does only with no session under way (:attr:`Monitor.chooses_walker` asks). With
        one under way — waiting to arm, the balance check — the walker profile cannot change,
        and the controller refuses the double press as two presses, "press once and hold":
        it was nobody's, and a walker who cannot see heard nothing at all."""
        return not self.under_way

    # --------------------------------------------------------------------- cues

    @property
    def cues(self) -> deque[CueRecord]:
        """Every cue played (or refused), newest last: the demo prints these."""
        return self._player.cues

    def _cue_scene(self) -> CueScene:
        """Where the session is, for a cue asked now and for judging one waiting
        (:class:`CuePlayer` asks when it plays, or finds a cue cut short or waiting)."""
        check = self._check
        return CueScene(
            self.session,
            self.state,
            self._safety.state,
            check.index if check is not None else None,
            self.plan,
        )

    # ------------------------------------------------------------------ walkers

    @property
    def walkers(self) -> tuple[Walker, ...]:
        """The walker profiles in button order (from the device database, via the courier)."""
        return self._chooser.walkers

    @walkers.setter
    def walkers(self, walkers: tuple[Walker, ...]) -> None:
        self._chooser.walkers = walkers

    @property
    def walker(self) -> Walker:
        """The walker of the next session (of the one under way: ``session.walker``)."""
        return self._chooser.walker

    @walker.setter
    def walker(self, walker: Walker) -> None:
        self._chooser.walker = walker

    @property
    def walker_choices(self) -> deque[WalkerChoice]:
        """Profiles chosen with the button, newest last (the demo prints these)."""
        return self._chooser.choices

    def _cycle_walker(self, now: float) -> None:
        """A double press in STANDBY, no session under way: the next walker profile
        (:meth:`WalkerChooser.cycle`)."""
        self._chooser.cycle(now, self._speaker)

    def _tell_session_walker(self) -> None:
        """Tell the link whose session is under way when that changes: the walker fixed at its
        start, whoever is chosen for the next session meanwhile (the CLI, a roster)."""
        s, state = self.session, self.state
        if s is self._told_session and state is self._told_state:
            return  # the usual tick: two identity checks
        self._told_session, self._told_state = s, state
        walker = s.walker.id if s is not None and self.under_way else None
        if walker == self._told_walker or self._session_walker is None:
            return
        self._told_walker = walker
        self._session_walker(walker)

    def start(self, now: float) -> tuple[bool, str]:
        if self.state in (SessionState.RUNNING, SessionState.PAUSED, SessionState.BALANCE):
            return False, "a session is already running; stop it first"
        if self._final_due is not None:
            self._final_due = 0.0  # the last session's record goes now, with what is there
            self._collect()
        if not self._chooser.known:
            log.info("session not started: the walker profiles have not come from the courier")
            return False, (
                "not started: the walker profiles have not reached the monitor from its courier "
                "yet, so it cannot tell whose session it would be; try again in a moment "
                "(nothing was armed)"
            )
        walker = self.walker
        if walker.id in self._pending_plans:
            self._walker_plans[walker.id] = self._pending_plans.pop(walker.id)
        self.plan = self._plan_of(walker.id)
        intervals = [
            IntervalLog(n, i.direction, i.speed, i.duration_s)
            for n, i in enumerate(self.plan.intervals)
        ]
        self.session = SessionTally(
            id=uuid.uuid4().hex,
            plan=self.plan,
            started_wall=wall_text(self._wall.now()),
            started_t=now,
            intervals=intervals,
            walker=walker,
            wall_offset=self._wall.offset(),
        )
        self._last_counts = self.steps.counts
        log.info(
            "session %s started for %s: %s", self.session.id, walker.name, self.plan.describe()
        )
        if self.measurements is not None:
            self.measurements.new_session(self.session.id)
        self._emit(final=False)
        # whose and which plan, first: at a treadmill five walkers share, the person who typed
        # `retroguard session start` reads whose session the records will count it in
        started = f"session started for {walker.name} ({walker.id}), plan {self.plan.describe()}"
        if self._safety.state is SafetyState.ARMED:
            self._run(now, SessionTrigger.START_ARMED)
            return True, started
        if self.config.balance_check and self._safety.state is SafetyState.STANDBY:
            if self._go(SessionState.BALANCE, SessionTrigger.START_BALANCE):
                self._begin_check(now, 0)
            return True, (
                f"{started}; it opens with the balance check: {TEXT[Cue.BALANCE]} "
                f"({BALANCE_MEASURE_S:.0f} s; press the reset button to skip it and walk)"
            )
        self._pause(now, SessionTrigger.START_NOT_ARMED, PauseCause.WAITING_FOR_ARMING)
        return True, (
            f"{started}; waiting for arming (state {self._safety.state.value}): "
            "press the reset button to arm — starting a session never arms"
        )

    def pause(self, now: float, by: WalkerCause = PauseCause.CLI) -> tuple[bool, str]:
        if self.state is SessionState.BALANCE:
            self._end_check(now, complete=False)
            self._pause(now, SessionTrigger.PAUSE, by)
            return True, "balance check stopped, session paused"
        if self.state is SessionState.RUNNING or (
            self.state is SessionState.PAUSED and not self._paused_by_walker
        ):
            self._pause(now, SessionTrigger.PAUSE, by)
            if self._safety.state is SafetyState.ARMED:
                # Start, resume and stop each answer with a cue; a pause answered with nothing,
                # so a walker who double-pressed could not tell it was taken and pressed again
                # (resuming). Never while TRIPPED or in FAULT: no words over a stopped belt.
                self._cue(Cue.PAUSED, now)
            return True, "session paused"
        return False, f"nothing to pause (session {self.state.value})"

    def resume(self, now: float) -> tuple[bool, str]:
        if self.state is not SessionState.PAUSED:
            return False, f"nothing to resume (session {self.state.value})"
        if self._safety.state is SafetyState.ARMED:
            self._run(now, SessionTrigger.RESUME_ARMED)
            return True, "session resumed"
        if self._go(SessionState.PAUSED, SessionTrigger.RESUME_NOT_ARMED):
            self._set_pause_cause(PauseCause.WAITING_FOR_ARMING)
        return True, "session will resume once armed (press the reset button)"

    def stop(self, now: float) -> tuple[bool, str]:
        """Stop the session under way. On the loop it follows the tick, which has looked at
        the safety controller already; called once the loop has returned (``retroguard run``,
        the demos), it first takes what the loop decided after the runner's last look (an
        iteration that ended before its hooks ran), so the last record has it."""
        self._follow_safety(now, self.under_way)
        if self.state not in (SessionState.RUNNING, SessionState.PAUSED, SessionState.BALANCE):
            return False, f"no session to stop (session {self.state.value})"
        session = self.session
        assert session is not None
        self._finish(now, SessionTrigger.STOP)
        return True, stopped_message(session.id)

    # ------------------------------------------------------------- helpers

    def _command(
        self, command: str, now: float, by: WalkerCause = PauseCause.CLI
    ) -> tuple[bool, str]:
        if command == "start":
            return self.start(now)
        if command == "pause":
            return self.pause(now, by)
        if command == "resume":
            return self.resume(now)
        if command == "toggle":
            if self.state in (SessionState.RUNNING, SessionState.BALANCE):
                return self.pause(now, by)
            if self.state is SessionState.PAUSED:
                return self.resume(now)
            return self.start(now)
        if command == "stop":
            return self.stop(now)
        if command == "status":
            return True, " ".join(f"{k}={v}" for k, v in self.snapshot().items())
        if command.startswith("walker "):
            return self._chooser.select(command.removeprefix("walker "))
        return False, f"unknown session command {command!r}"

    def _on_gesture(self, gesture: Gesture, now: float) -> None:
        kind, first_press = gesture.kind, gesture.first_press
        safety = self._safety
        if (
            kind is GestureKind.DOUBLE
            and safety.state is SafetyState.STANDBY
            and first_press > safety.since
            and gesture.longest_s < ARM_HOLD_S
        ):
            # Made wholly in STANDBY, no press held to the chirp: never a reset press.
            if self.under_way:  # the controller refuses it (Monitor.chooses_walker)
                log.info("double press in standby: no walker chosen, a session is under way")
            else:
                self._cycle_walker(now)
            return
        if safety.state is not SafetyState.ARMED or first_press <= safety.since:
            # Made (partly) outside ARMED: its presses were reset presses. Nothing more.
            log.info("button %s press ignored by the session: not made while armed", kind.value)
            return
        command = "toggle" if kind is GestureKind.DOUBLE else "stop"
        ok, message = self._command(command, now, by=PauseCause.BUTTON)
        if not ok and command == "toggle" and not self._chooser.known:  # a start refused
            self._chooser.refuse_start(self._speaker)
        log.info("button %s press: %s", kind.value, message)

    def _follow_safety(self, now: float, under_way: bool = True) -> None:
        transitions = self._safety.transitions
        detection = self._safety.last_detection
        new_detection = detection is not self._last_detection
        self._last_detection = detection
        if not under_way:
            # No session to pause or to count trips in: only remember where the log is (and
            # credit an ended session's trip with what its incident brings).
            if transitions:
                self._last_transition = transitions[-1]
            self._seen_transitions = True
            if self._trip is not None:
                self._follow_trip(detection if new_detection else None)
            return
        new: list[Transition] = []
        for transition in reversed(transitions):
            if transition is self._last_transition:
                break
            new.append(transition)
        if transitions:
            self._last_transition = transitions[-1]
        if not self._seen_transitions:
            self._seen_transitions = True
            new = []  # the history before this runner existed is not ours
        s = self.session
        if s is not None and self.state in (SessionState.RUNNING, SessionState.PAUSED):
            interval = s.intervals[min(s.current, len(s.intervals) - 1)]
            counted = False
            for transition in reversed(new):
                match transition.cause:
                    case Detected(kind=kind):  # a trip: the only way into TRIPPED
                        interval.trips += 1
                        if kind is DetectionKind.STUMBLE:
                            interval.stumbles += 1
                        else:
                            interval.falls += 1
                        self._trip = CountedTrip(s, interval, kind, self._safety.incident)
                        counted = True
            if counted and self.state is SessionState.PAUSED:
                # A trip while the walker's pause kept the belt armed: no pause follows to
                # hand the record over (a running session's does, below), and it waited for
                # the next interval's end, minutes perhaps; a power cut meanwhile lost the
                # trip from the session's figures though its event was stored. Handed over
                # now, right behind the trip's event.
                self._emit(final=False)
        if self._trip is not None:
            self._follow_trip(detection if new_detection else None)
        state = self._safety.state
        if self.state is SessionState.BALANCE and state is not SafetyState.STANDBY:
            # The check measures only in STANDBY: it ends on this iteration, unfinished.
            self._end_check(now, complete=False)
            if state is SafetyState.ARMED:
                self._run(now, SessionTrigger.ARMED_DURING_CHECK)
            else:
                self._pause(now, SessionTrigger.DISARMED, PauseCause.FAULT)
        elif self.state is SessionState.RUNNING and state is not SafetyState.ARMED:
            cause = PauseCause.TRIP if state is SafetyState.TRIPPED else PauseCause.FAULT
            self._pause(now, SessionTrigger.DISARMED, cause)
        elif self.state is SessionState.PAUSED and state is SafetyState.ARMED:
            if not self._paused_by_walker:
                self._run(now, SessionTrigger.REARMED)
            elif any(t.state is SafetyState.ARMED for t in new):
                # Re-armed after a trip during the walker's own pause: the session stays paused
                # (theirs to end), and a walker who heard only the chirp waited for a resume
                # cue that never came. Said again after the chirp: paused, and how to go on.
                self._pending_cue = (now + RESUME_CUE_DELAY_S, Cue.PAUSED)

    def _follow_trip(self, detection: Detection | None) -> None:
        """The newest trip's incident: ``detection`` (new since the last look) is credited to
        the trip while the incident is open — to the session it happened in, under way or
        ended, never to one started since; once the walker has re-armed it is over."""
        trip = self._trip
        assert trip is not None
        if trip.incident is None or self._safety.incident != trip.incident:
            self._trip = None  # re-armed: the incident is over
            return
        if detection is not None and trip.credit(detection.kind):
            self._amend(trip.session)

    def _amend(self, s: SessionTally) -> None:
        """``s``'s counts changed in its trip's incident: its record goes to the courier again
        (a put, as every record). A record of an ended session says it was amended and is final
        again, so the stored summary is replaced and published again; one whose final record
        still waits for the last gait figures (:meth:`_collect`) is stored now, final later."""
        if s.status != "running":
            s.amended += 1
            log.info("session %s amended after it ended: its trip's incident went on", s.id)
        waiting = s is self.session and self._final_due is not None
        record = self._emit(final=s.status != "running" and not waiting, session=s)
        if record is not None and record.ended:
            for n, done in enumerate(self.finished):
                if done.id == record.id:
                    self.finished[n] = record

    @property
    def _paused_by_walker(self) -> bool:
        return self.pause_cause in WALKER_CAUSES

    def _go(self, target: SessionState, trigger: SessionTrigger) -> bool:
        """Move to ``target`` if :data:`SESSION_TRANSITIONS` allows it; True if it did.

        A refusal is a bug here: logged, and the session stays where it was. It
        never raises (that would stop the monitor loop) and it cannot matter to
        safety: the runner has no way to the relay.
        """
        if not SESSION_TRANSITIONS.allows(self.state, target, trigger):
            log.error(
                "session: forbidden transition %s -> %s on %s: refused",
                self.state.value,
                target.value,
                trigger.value,
            )
            return False
        self.state = target
        return True

    def _set_pause_cause(self, cause: PauseCause | None) -> None:
        self.pause_cause = cause
        if cause is None:
            self.pause_reason = ""
        elif cause is PauseCause.FAULT:
            state = self._safety.state.value
            self.pause_reason = (
                f"paused by the monitor ({state}): re-arm with the reset button to resume"
            )
        else:
            self.pause_reason = _PAUSE_TEXT[cause]

    def _run(self, now: float, trigger: SessionTrigger) -> None:
        s = self.session
        assert s is not None
        was_paused = self.state is SessionState.PAUSED
        if not self._go(SessionState.RUNNING, trigger):
            return
        if was_paused:
            s.paused_s += now - self._paused_at
        self._set_pause_cause(None)
        interval = s.intervals[s.current]
        cue = cue_for(self.plan.intervals[s.current].direction)
        if not s.ever_ran:
            s.ever_ran = True
            # Armed since the session started (it waited for arming, or the balance check
            # ended with a press): the relay has just closed and the treadmill waits for its
            # own start button, so the belt stands still. Its first words say to start it,
            # as after a trip: "Walk backward for 2 minutes" told a walker on a still belt,
            # who cannot see behind them, to step towards its end.
            stopped = self._safety.since > s.started_t
            self._cue(cue, now, resumed=stopped, belt_stopped=stopped)
            log.info("session running: interval 1/%d %s", len(s.intervals), interval.direction)
        else:
            self._pending_cue = (now + RESUME_CUE_DELAY_S, cue)
            # ARMED again since the pause began: the relay was released meanwhile (a trip, a
            # fault; ARMED is entered only from another state), so the belt stands still.
            self._belt_stopped = was_paused and self._safety.since > self._paused_at
            log.info("session resumed in interval %d %s", s.current + 1, interval.direction)

    def _pause(self, now: float, trigger: SessionTrigger, cause: PauseCause) -> None:
        was_paused = self.state is SessionState.PAUSED
        if not self._go(SessionState.PAUSED, trigger):
            return
        if not was_paused:
            self._paused_at = now
            if self.session is not None:
                self.session.pauses += 1
                self.session.breaks.append(self.session.plan_t)
        self._set_pause_cause(cause)
        self._pending_cue = None
        if trigger is SessionTrigger.DISARMED:
            self._player.drop_retries()  # the safety prompts win: no cue waits over them
        if trigger is SessionTrigger.DISARMED:
            # A turn, just as the interval's prompt begins (about 8 s of it), is a likely
            # moment for a stumble: the prompt went on over the alarm, telling a walker on a
            # stopped belt to walk on, and kept the trip's own words waiting behind it.
            self._player.withdraw_words(self._speaker)
        self._player.forget_words()
        log.info("session %s", self.pause_reason)
        self._emit(final=False)

    def _advance(self, now: float) -> None:
        s = self.session
        counts = self.steps.counts
        delta = counts.minus(self._last_counts)
        self._last_counts = counts
        if s is None:
            return
        if self.state is SessionState.BALANCE:
            self._advance_check(now)
            return
        if self.state is SessionState.PAUSED:
            if now - self._paused_at >= self.config.max_pause_s:
                self._finish(now, SessionTrigger.MAX_PAUSE)
                return
            pending = self._pending_cue
            if pending is not None and now >= pending[0]:
                self._pending_cue = None
                if self._safety.state is SafetyState.ARMED:
                    self._cue(pending[1], now)
            return
        if self.state is not SessionState.RUNNING:
            return
        self._measure_interval(s)
        last = self._last_now if self._last_now is not None else now
        elapsed = max(0.0, now - last) * self.time_scale
        interval = s.intervals[s.current]
        interval.steps += delta.steps
        interval.walking_s += delta.walking_s
        s.plan_t += elapsed
        interval.done_s += elapsed
        starts = self.plan.starts()
        while True:
            end = starts[s.current] + self.plan.intervals[s.current].duration_s
            if s.plan_t < end:
                break
            # Interval over: time past its end belongs to the next one.
            over = s.plan_t - end
            s.intervals[s.current].done_s -= over
            if s.current + 1 >= len(s.intervals):
                s.plan_t = end
                self._finish(now, SessionTrigger.PLAN_ENDS)
                return
            s.current += 1
            s.intervals[s.current].done_s += over
            # The interval over, what was said of it no longer holds: its resume cue still to
            # come is dropped, and its words still queued or playing ("Resume walking
            # backward", "walk backward for 2 minutes") are withdrawn, so the turn's words
            # come at once and alone (before, the walker heard "resume walking backward" and
            # then "turn around and walk forward").
            self._pending_cue = None
            self._player.withdraw_words(self._speaker)
            self._cue(cue_for(self.plan.intervals[s.current].direction), now)
            self._measure_interval(s)
            self._emit(final=False)
        # The resume cue once the interval it resumes is known to go on (after the loop: due
        # in the tick its interval ended, it would say to carry on, then the turn).
        if self._pending_cue is not None and now >= self._pending_cue[0]:
            self._cue(self._pending_cue[1], now, resumed=True, belt_stopped=self._belt_stopped)
            self._pending_cue = None
        self._maybe_warn(s, now, starts)
        self._maybe_warn_turn(s, now, starts)

    def _maybe_warn(self, s: SessionTally, now: float, starts: list[float]) -> None:
        if not self.config.one_minute_warning or s.current in s.warned:
            return
        interval = self.plan.intervals[s.current]
        end = starts[s.current] + interval.duration_s
        session_end = self.plan.duration_s
        warn = interval.duration_s > WARN_INTERVALS_LONGER_THAN_S
        if session_end - end < 1e-9 and session_end > ONE_MINUTE_S * 2:
            warn = True
        if warn and end - s.plan_t <= ONE_MINUTE_S and interval.duration_s > ONE_MINUTE_S:
            s.warned.add(s.current)
            self._cue(Cue.ONE_MINUTE, now)

    def _maybe_warn_turn(self, s: SessionTally, now: float, starts: list[float]) -> None:
        """:data:`TURN_AHEAD_S` before an interval that turns the walker round: get ready, slow
        the belt, hold the rail (:attr:`Cue.TURN_AHEAD`). Once an interval, and once more after
        a pause (a trip) in those seconds, once the resume cue has said where the walker is
        (never before it: "get ready to turn", then "resume walking backward"). Not in an
        interval shorter than twice the lead (its own cue's words would still be playing), nor
        before a rest (the rest's cue says to stop the belt: no turn, :func:`turns_at`)."""
        index = s.current
        if s.turn_warned.get(index) == s.pauses or self._pending_cue is not None:
            return
        if not turns_at(self.plan, index + 1):
            return
        interval = self.plan.intervals[index]
        if interval.duration_s < 2 * TURN_AHEAD_S:
            return
        if starts[index] + interval.duration_s - s.plan_t <= TURN_AHEAD_S:
            s.turn_warned[index] = s.pauses
            self._cue(Cue.TURN_AHEAD, now)

    def compress_cues(self, patterns: Mapping[str, Pattern]) -> None:
        """The buzzer plays ``patterns`` in place of the cues' own of their names (a plan
        running ``time_scale`` times faster: :func:`~firmware.session.attach.attach_session`):
        a cue is watched until the end of the one it plays."""
        self._player.compressed = patterns

    def _cue(
        self, cue: Cue, now: float, *, resumed: bool = False, belt_stopped: bool = False
    ) -> None:
        """Play ``cue`` and queue its prompt (:meth:`CuePlayer.play`)."""
        self._player.play(cue, now, self._speaker, resumed=resumed, belt_stopped=belt_stopped)

    def _finish(self, now: float, trigger: SessionTrigger) -> None:
        s = self.session
        assert s is not None
        was_paused = self.state is SessionState.PAUSED
        if not self._go(SessionState.FINISHED, trigger):
            return
        if was_paused:
            s.paused_s += now - self._paused_at
        status = _FINISH_STATUS[trigger]
        s.status = status
        s.ended_wall = wall_text(self._wall.now())
        s.ended_offset = self._wall.offset()
        self._set_pause_cause(None)
        self._pending_cue = None
        self._end_check(now, complete=False)
        if trigger is SessionTrigger.PLAN_ENDS:
            self._cue(Cue.DONE, now)
        elif self._safety.state is SafetyState.ARMED:
            self._cue(Cue.DONE, now)  # the walker feels the stop was taken
        log.info("session %s %s after %.0f s of plan", s.id, status, s.plan_t)
        m = self.measurements
        if m is not None:
            m.end()
        if m is not None and m.busy:
            # Stored now, summarised once the last interval's figures are in (_collect).
            self._final_due = time.monotonic() + FINAL_WAIT_S
            record = self._emit(final=False)
        else:
            record = self._emit(final=True)
        if record is not None:
            self.finished.append(record)
            if record.wall_unsynced:
                log.warning(
                    "session %s was recorded with the clock not set (no network time since "
                    "boot): its date %s, and the week it counts in, may be wrong",
                    s.id,
                    record.started_wall,
                )

    # ------------------------------------------------- balance and gait

    @property
    def _check(self) -> CheckStep | None:
        """The balance check's step under way (None: none)."""
        return self._balance.step

    def _begin_check(self, now: float, index: int) -> None:
        s = self.session
        assert s is not None
        self._cue(self._balance.begin(now, index, s, self.steps.steps), now)

    def _advance_check(self, now: float) -> None:
        check = self._check
        if check is None or now < check.ends:
            return
        self._end_check(now, complete=True)
        if check.index == 0 and self.config.balance_eyes_closed:
            self._begin_check(now, 1)
            return
        self._pause(now, SessionTrigger.CHECK_DONE, PauseCause.WAITING_FOR_ARMING)
        self._cue(Cue.BALANCE_DONE, now)  # said in the pause it announces (a retry's state)

    def _end_check(self, now: float, *, complete: bool) -> None:
        """The check in progress ends: measured to its end, or cut short (no figures)."""
        self._balance.end(now, self.session, self.steps.steps, complete=complete)

    def _measure(self, batch: Sequence[Any]) -> None:
        """Hand this iteration's samples to the measurement thread (references, no copy of
        the data): a balance check's only while the monitor is in STANDBY."""
        m = self.measurements
        if m is not None:
            feed_samples(m, batch, self.state, self._safety.state)

    def _measure_interval(self, s: SessionTally) -> None:
        """The measurement job follows the current interval (none for a rest)."""
        m = self.measurements
        if m is not None:
            follow_interval(m, s, self.plan)

    def _collect(self) -> None:
        """Figures from the measurement thread into the session; the deferred last record."""
        m = self.measurements
        if m is None:
            return
        idle = not m.busy  # before take(): every answer of the work done is then in the queue
        changed = take_figures(m, self.session)
        if self._final_due is not None:
            if idle or time.monotonic() >= self._final_due:
                if not idle:
                    log.warning("session record stored without the last gait figures: late")
                self._final_due = None
                record = self._emit(final=True)
                if record is not None and self.finished and self.finished[-1].id == record.id:
                    self.finished[-1] = record
            return
        if changed:
            self._emit(final=False)

    def settle_measurements(self, timeout: float) -> None:
        """Wait for the measurement thread and store what is due (not on the loop thread:
        :func:`detach_session` calls it once the loop has stopped)."""
        m = self.measurements
        if m is not None and not m.wait_idle(timeout):
            log.error("gait measurements not finished within %.0f s", timeout)
        if self._final_due is not None:
            self._final_due = 0.0
        self._collect()

    def _emit(self, *, final: bool, session: SessionTally | None = None) -> SessionRecord | None:
        """Hand ``session``'s record (by default the current session's) to the courier."""
        s = session if session is not None else self.session
        if s is None:
            return None
        follow_wall_clock(s, self._wall)
        record = session_record(s, self.device_id)
        if self._record is not None:
            try:
                self._record(record, final)
            except Exception:
                log.exception("session record could not be queued")
        return record
