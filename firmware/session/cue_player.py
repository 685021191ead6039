"""Playing the session's cues: beeps on the buzzer, words on the speaker, again while they hold.

The walker walks backward blind: a cue never heard was a turn never made. :class:`CuePlayer`
plays a cue's pattern and queues its sentence; refused by the buzzer (a higher-priority
pattern holds it: a call for help's beeps, a resume cue under "one minute left") it keeps the
cue, replacing an older one of its kind (:data:`RETRY_KIND`), and plays it once the buzzer is
free; started and then cut short by another pattern, its beeps are played again (its words,
queued as it started, are not said twice). Either only while the situation it was asked in
still holds (:meth:`CuePlayer._stale`): the session, its state, the interval, the balance
check's step, the safety state and the count of pauses, and for "one minute left" and "get
ready to turn" while enough of the interval is left. The sentences queued since the last
pause or interval can be withdrawn when they no longer hold (a trip, the next interval).

The session runner owns one and decides *when* a cue is due; the player asks it where the
session is (a :class:`CueScene`) only as it plays a cue or judges one waiting. On the loop
thread: one identity test a tick while a cue sounds, one truth test while none waits; no
wait, no lock, no I/O (the prompt is a put to the speaker's thread).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from firmware.safety import SafetyState
from firmware.session.cues import CUT_SLACK_S, PATTERN, Cue, Speaker, cue_text, turns_at
from firmware.session.plan import Plan
from firmware.session.recording import SessionTally
from firmware.session.states import SessionState
from firmware.session.voice import Prompts
from hal.buzzer_patterns import Pattern, get_pattern
from hal.interfaces import Buzzer

log = logging.getLogger(__name__)


ONE_MINUTE_WORTH_S = 40.0
"""A "one minute left" refused when due (the buzzer busy) is still played while at least this
much of its interval is left: later, it says something the walker would take to be false."""
TURN_AHEAD_WORTH_S = 5.0
"""A "get ready to turn" refused when due (the buzzer busy) is still played while at least
this much of its interval is left; later, the turn's own cue says it."""


@dataclass(frozen=True, slots=True)
class CueScene:
    """Where the session is as a cue is asked for, or a waiting one judged."""

    session: SessionTally | None
    state: SessionState
    safety: SafetyState
    """The safety controller's state."""
    check: int | None
    """The balance check's step (0 eyes open, 1 eyes closed; None: no check under way)."""
    plan: Plan
    """The plan of the session under way (or of the next one)."""


@dataclass(frozen=True, slots=True)
class CueRetry:
    """A cue the buzzer refused when it was due (another pattern held the output), or cut short
    after it started, to play as soon as the buzzer is free — while the situation it was asked
    in still holds (:meth:`CuePlayer._stale`): the same session, session state, interval,
    balance-check step, safety state and count of pauses, and for "one minute left" until
    :attr:`until_plan_t`."""

    cue: Cue
    resumed: bool
    belt_stopped: bool
    session: SessionTally | None
    state: SessionState
    safety: SafetyState
    interval: int
    until_plan_t: float
    """Plan time from which it is no longer worth saying (``inf``: never by time)."""
    pauses: int = 0
    """The session's pauses when it was due: any pause since (a trip, a fault, the walker's)
    makes it stale, even once the session runs in the same interval again (the resume cue
    says what holds then)."""
    check: int | None = None
    """The balance check's step (0 eyes open, 1 eyes closed; None: no check under way)."""
    words: bool = True
    """Queue its words when played: False for a cue cut short after it started, whose words
    were queued then (the speaker does not stop for the buzzer: they are heard in full, and
    are not said twice)."""


@dataclass(frozen=True, slots=True)
class Sounding:
    """A cue the runner started on the buzzer, until its pattern's end: the buzzer playing
    another pattern before then cut it short (none: stopped, or played out)
    (:meth:`CuePlayer.watch`)."""

    retry: CueRetry
    """How to play it again (its words not again)."""
    pattern: str
    ends: float
    """Monotonic time its pattern ends, played out."""


RETRY_KIND: dict[Cue, str] = {
    Cue.BACKWARD: "interval",
    Cue.FORWARD: "interval",
    Cue.REST: "interval",
    Cue.ONE_MINUTE: "one_minute",
    Cue.TURN_AHEAD: "turn_ahead",
    Cue.DONE: "done",
    Cue.PAUSED: "paused",
    Cue.BALANCE: "balance",
    Cue.BALANCE_EYES_CLOSED: "balance",
    Cue.BALANCE_DONE: "balance",
}
"""A newer cue replaces a refused (or cut) one of its kind still waiting to be played: an
interval's cue the one of the interval before, the eyes-closed cue the eyes-open one. Every
kind is played again after it was cut short, while it holds (:meth:`CuePlayer._stale`)."""


@dataclass(frozen=True, slots=True)
class CueRecord:
    cue: Cue
    t: float
    """Monotonic time it was played."""
    plan_t: float
    """Plan time (seconds of the plan done) when it was played."""
    interval: int
    played: bool
    """False when the buzzer refused it (a higher-priority pattern was sounding)."""
    spoken: str = ""
    """The sentence of the spoken prompt (:mod:`.voice`): queued to the speaker when there is
    one and the cue played; the demo prints it either way."""
    turn: bool = True
    """An interval's cue: the walker turns round for it (backward <-> forward)."""
    resumed: bool = False
    """The interval's cue repeated as the session resumes it (after re-arming or a pause):
    the walker carries on the way they were going."""
    belt_stopped: bool = False
    """A resume cue with the belt stopped since the pause began (a trip, a fault): it says to
    start the belt, holding the rail, then walk."""
    late: bool = False
    """Refused when due (a record with ``played`` False before it) and played once the buzzer
    was free, or cut short after it started and played again."""
    replayed: bool = False
    """Played again after it was cut short by a higher-priority pattern (a played record of it
    before): its beeps only, its words having been queued as it started."""

    @property
    def text(self) -> str:
        return cue_text(
            self.cue, turn=self.turn, resumed=self.resumed, belt_stopped=self.belt_stopped
        )


class CuePlayer:
    """The session's cues: played, watched until they end, kept and played again while they
    hold, and every one recorded (:attr:`cues`)."""

    def __init__(self, buzzer: Buzzer, prompts: Prompts, scene: Callable[[], CueScene]) -> None:
        self._buzzer = buzzer
        self._prompts = prompts
        self._scene = scene
        """Where the session is now (the runner's answer): asked as a cue plays, or when one
        cut short or waiting is judged."""
        self.cues: deque[CueRecord] = deque(maxlen=512)
        """Every cue played (or refused), newest last: the demo prints these."""
        self.retries: dict[str, CueRetry] = {}
        """Cues the buzzer refused when due, or cut short, by :data:`RETRY_KIND`, oldest first:
        each is played once the buzzer is free, unless stale by then (:meth:`retry`)."""
        self.sounding: Sounding | None = None
        """The cue last started on the buzzer, until its pattern ends (:meth:`watch`)."""
        self.compressed: Mapping[str, Pattern] = {}
        """The patterns the buzzer plays in place of the cues' own, by name, in a session
        whose plan runs faster than real time (:func:`~firmware.session.cues.compressed_patterns`):
        a cue sounds until the end of the one played."""
        self._words: deque[str] = deque(maxlen=4)
        """The session cues' sentences queued since the last pause or interval: a trip or a
        fault withdraws them (the runner's pause), so no "walk backward for 2 minutes" plays
        over a stopped belt, and so does the next interval."""

    def drop_retries(self) -> None:
        """Forget every cue waiting to be played (a trip or a fault: the safety prompts win)."""
        self.retries.clear()

    def forget_words(self) -> None:
        """A pause: the words queued before it are no longer the ones to withdraw."""
        self._words.clear()

    def withdraw_words(self, speaker: Speaker | None) -> None:
        """The session cues' words queued since the last pause or interval no longer hold:
        the speaker drops them if still queued, cuts short the one playing (a put and a
        signal: :meth:`firmware.session.voice.PromptPlayer.withdraw` never blocks)."""
        if speaker is not None:
            for words in self._words:
                speaker.withdraw(words)
        self._words.clear()

    def play(
        self,
        cue: Cue,
        now: float,
        speaker: Speaker | None,
        *,
        resumed: bool = False,
        belt_stopped: bool = False,
        late: bool = False,
        words: bool = True,
    ) -> None:
        """Play ``cue`` and queue its prompt; ``resumed``: the current interval's cue as the
        session resumes it (it says to carry on, never to turn), ``belt_stopped`` on a belt
        stopped since the pause began (to start it first); ``late``: a retry; ``words``
        False: its beeps only (a replay of a cue cut short, whose words were queued).

        Refused by the buzzer (a higher-priority pattern holds it: a call for help's beeps,
        a resume cue under "one minute left"), the cue is kept, replacing an older one of its
        kind, and played with its words once the buzzer is free (:meth:`retry`): the
        walker walks backward blind, and a cue never heard was a turn never made. Played, it
        is watched until its pattern ends (:meth:`watch`): cut short by another pattern,
        its beeps are played again once the buzzer is free, on the same terms."""
        scene = self._scene()
        s, plan = scene.session, scene.plan
        if self.sounding is not None:
            self.watch(now)  # a cue of ours still sounding, before this one may cut it
        pattern = PATTERN[cue]
        playing: str | None = None
        before: str | None = None
        try:
            before = self._buzzer.pattern
            self._buzzer.play(pattern, now)
            playing = self._buzzer.pattern
            played = playing == pattern
        except Exception:  # a buzzer problem must not stop the session (nor the loop)
            log.exception("cue %s failed", cue.value)
            played = False  # and not kept: a broken buzzer would fail it every iteration
        kind = RETRY_KIND[cue]
        self.retries.pop(kind, None)  # a newer cue of its kind replaces a waiting one
        index = s.current if s else 0
        until = math.inf
        if cue in (Cue.ONE_MINUTE, Cue.TURN_AHEAD) and s is not None:
            end = plan.starts()[index] + plan.intervals[index].duration_s
            worth = ONE_MINUTE_WORTH_S if cue is Cue.ONE_MINUTE else TURN_AHEAD_WORTH_S
            until = end - worth
        retry = CueRetry(
            cue,
            resumed,
            belt_stopped,
            s,
            scene.state,
            scene.safety,
            index,
            until,
            s.pauses if s is not None else 0,
            scene.check,
            words,
        )
        if not played and playing is not None:
            self.retries[kind] = retry
            log.info("cue %s refused (%s playing): played once it ends", cue.value, playing)
        elif played and before != pattern:  # newly started (not one already sounding)
            cut, self.sounding = (
                self.sounding,
                Sounding(
                    dataclasses.replace(retry, words=False),
                    pattern,
                    now + (self.compressed.get(pattern) or get_pattern(pattern)).period,
                ),
            )
            if cut is not None and before == cut.pattern:
                self._cut_short(cut)  # one of ours, cut by this cue
        if resumed:
            left = plan.duration_s - (s.plan_t if s else 0.0)
            prompts: tuple[str, ...] = self._prompts.resume(
                plan, index, left, belt_stopped=belt_stopped
            )
        else:
            prompts = (self._prompts.for_cue(cue, plan, index),)
        if not words:
            prompts = ()
        spoken = " ".join(prompts)
        record = CueRecord(
            cue,
            now,
            s.plan_t if s else 0.0,
            index,
            played=played,
            spoken=spoken,
            turn=turns_at(plan, index),
            resumed=resumed,
            belt_stopped=resumed and belt_stopped,
            late=late and played,
            replayed=late and played and not words,
        )
        self.cues.append(record)
        log.info("cue %s: %s", cue.value, record.text)
        if speaker is not None and played:
            for prompt in prompts:
                speaker.say(prompt)  # a put: the speaker's own thread plays them in turn
                self._words.append(prompt)

    def watch(self, now: float) -> None:
        """The cue last started (:attr:`sounding`): forgotten once its pattern has played out
        (or was stopped — a caregiver's ``silence`` no longer stops a cue:
        :func:`firmware.app.silence_alarm`); found cut short — the
        buzzer plays another pattern before its end — it is kept to play again
        (:meth:`_cut_short`). One comparison a tick while it sounds."""
        sounding = self.sounding
        assert sounding is not None
        playing = self._buzzer.pattern
        if playing == sounding.pattern:
            if now >= sounding.ends:
                self.sounding = None  # played out (the buzzer clears it at its next update)
            return
        self.sounding = None
        if playing is not None and now < sounding.ends - CUT_SLACK_S:
            self._cut_short(sounding)
        # Silent before its end: stopped (never by a caregiver's ``silence``: alarms only),
        # played out, never cut.

    def _cut_short(self, sounding: Sounding) -> None:
        """A cue cut short by a higher-priority pattern (a call for help's beeps, a caregiver's
        answer, a refused reset press, a cue of the runner's own): its beeps are played again
        once the buzzer is free, unless stale by then (:meth:`_stale`: a trip, a fault, a pause,
        the next interval or check step, a session ended or started) or a newer cue of its
        kind is waiting. Its words were queued as it started and are not said again."""
        retry = sounding.retry
        kind = RETRY_KIND[retry.cue]
        if self._stale(retry, self._scene()) or kind in self.retries:
            log.info(
                "cue %s cut short by %s: not played again", retry.cue.value, self._buzzer.pattern
            )
            return
        self.retries[kind] = retry
        log.info(
            "cue %s cut short by %s: played again once it ends",
            retry.cue.value,
            self._buzzer.pattern,
        )

    def retry(self, now: float, speaker: Speaker | None) -> None:
        """The refused or cut cues (:meth:`play`): each stale one is dropped, and once the
        buzzer is free the oldest is played. A few comparisons and at most one cue an
        iteration: no wait, no lock, no I/O (the prompt is a put to the speaker's thread)."""
        scene = self._scene()
        for kind, retry in tuple(self.retries.items()):  # a handful at most, while any wait
            if self._stale(retry, scene):
                del self.retries[kind]
                log.info("refused cue %s dropped: stale", retry.cue.value)
        if not self.retries or self._buzzer.pattern is not None:
            return
        retry = next(iter(self.retries.values()))
        # A refusal keeps it anew.
        self.play(
            retry.cue,
            now,
            speaker,
            resumed=retry.resumed,
            belt_stopped=retry.belt_stopped,
            late=True,
            words=retry.words,
        )

    def _stale(self, retry: CueRetry, scene: CueScene) -> bool:
        """Whether a refused (or cut) cue no longer holds: the session, its state, the
        interval, the balance check's step, the safety state or the count of pauses changed
        since it was asked (the next interval's cue replaces it, a trip or a pause makes it
        false, a new session is another's), or it is "one minute left" with less than
        :data:`ONE_MINUTE_WORTH_S` to go. The end of a session holds until something else
        happens."""
        s = scene.session
        if (
            s is not retry.session
            or scene.state is not retry.state
            or scene.safety is not retry.safety
            or scene.check != retry.check
        ):
            return True
        return s is not None and (
            s.current != retry.interval
            or s.pauses != retry.pauses
            or s.plan_t >= retry.until_plan_t
        )
