"""Choosing the walker of the next session with the button, and saying who it is.

A double press in STANDBY, with no session under way, chooses the next walker profile in
button order (:meth:`WalkerChooser.cycle`): said by name when the speaker is heard (a
chirp), else beeped as the walker's number, which is then the only answer — so a number
refused or cut short by a higher-priority pattern is beeped again once the buzzer is free,
while the choice still holds (:meth:`WalkerChooser.watch_beep`). The roster itself comes
from the device database through the courier (:meth:`WalkerChooser.take_roster`). Choosing
only says whose next session it is: it cannot arm (no way to the relay) and starts nothing.
The session runner owns one; everything here runs on the loop thread, a few comparisons a
tick while a number waits.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.safety import SafetyState
from firmware.session.cues import CUT_SLACK_S, Speaker
from firmware.session.safety_view import SafetyView
from firmware.session.voice import Prompts
from hal.buzzer_patterns import get_pattern, walker_pattern_name
from hal.interfaces import Buzzer

if TYPE_CHECKING:
    from firmware.link.messages import WalkerRoster

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WalkerChoice:
    """A walker profile chosen with the button (a double press in STANDBY)."""

    walker: Walker
    t: float
    position: int
    """1-based, in button order."""
    spoken: str
    """The sentence queued to the speaker ("" with no speaker: the beep pattern played)."""
    pattern: str
    played: bool = True
    """The buzzer took the pattern at once; False: refused (a higher-priority pattern was
    sounding), played once the buzzer is free (:meth:`WalkerChooser.watch_beep`)."""


@dataclass(slots=True)
class WalkerBeep:
    """A walker's number beeped (no voice), from the choice until its pattern has played out:
    refused or cut short by a higher-priority pattern, it is played again once the buzzer is
    free, while the choice holds (:meth:`WalkerChooser.watch_beep`)."""

    choice: WalkerChoice
    since: float
    """The safety controller's ``since`` at the choice: the STANDBY it was made in."""
    ends: float | None
    """Monotonic time its pattern ends, played out; None: waiting for the buzzer."""


class WalkerChooser:
    """The walker profiles in button order, the walker of the next session, and the
    button's choices of it (the runner's :attr:`~firmware.session.runner.SessionRunner.walker`
    and :attr:`~firmware.session.runner.SessionRunner.walkers` read and set these)."""

    def __init__(
        self,
        safety: SafetyView,
        buzzer: Buzzer,
        prompts: Prompts,
        new_roster: Callable[[], tuple[WalkerRoster, bool] | None] | None = None,
        chosen: Callable[[str], None] | None = None,
    ) -> None:
        self._safety = safety
        self._buzzer = buzzer
        self._prompts = prompts
        self._new_roster = new_roster
        """The roster the courier sent since the last look (and whether it has stored the
        walker's latest press), or None."""
        self._chosen = chosen
        """Told the walker chosen with the button (the courier stores the choice)."""
        self.walkers: tuple[Walker, ...] = (DEFAULT_WALKER,)
        """The walker profiles in button order (from the device database, via the courier)."""
        self.walker: Walker = DEFAULT_WALKER
        """The walker of the next session (of the one under way: ``session.walker``)."""
        self.choices: deque[WalkerChoice] = deque(maxlen=64)
        """Profiles chosen with the button, newest last (the demo prints these)."""
        self.beep: WalkerBeep | None = None
        """The walker's number beeped (no voice) until it has played out."""
        self.known = new_roster is None
        """The courier's roster has come (or there is no courier to send one): until it has,
        :attr:`walker` is the default walker for want of knowing, not the one chosen in the
        device database, and no session may start (:meth:`refuse_start`)."""

    def take_roster(self) -> bool:
        """Take the roster the courier sent since the last look, if any: True when one came
        (the runner then has the speaker render the names and the plans' prompts)."""
        if self._new_roster is None:
            return False
        new = self._new_roster()
        if new is None:
            return False
        roster, current = new
        self.known = True
        self.walkers = tuple(roster.walkers) or (DEFAULT_WALKER,)
        if not current and self.walker in self.walkers:
            # The courier has not stored the walker's latest press yet: its selection is older.
            return True
        if roster.selected != self.walker:
            log.info(
                "walker of the next session: %s (%s)", roster.selected.name, roster.selected.id
            )
        self.walker = roster.selected
        return True

    def select(self, walker_id: str) -> tuple[bool, str]:
        """``retroguard walker select`` stored ``walker_id`` as the next session's walker: take
        it now, not a second later with the courier's roster, so a session started once the
        command has returned is theirs. A walker not on the roster the loop has (added since)
        comes with the next roster."""
        walker = next((w for w in self.walkers if w.id == walker_id), None)
        if walker is None:
            return False, (
                f"walker {walker_id} is not on the monitor's roster yet: it takes them from "
                "its courier within a second"
            )
        if walker != self.walker:
            log.info("walker of the next session: %s (%s), from the CLI", walker.name, walker.id)
        self.walker = walker
        return True, f"the monitor's next session is {walker.name}'s"

    def cycle(self, now: float, speaker: Speaker | None) -> None:
        """A double press in STANDBY, no session under way: the next walker profile, said by
        name (or beeped: its number). It only chooses whose next session it is; it cannot arm
        (the runner has no way to the relay) and it starts nothing."""
        walkers = self.walkers
        index = next((n for n, w in enumerate(walkers) if w.id == self.walker.id), -1)
        position = (index + 1) % len(walkers)
        walker = walkers[position]
        self.walker = walker
        spoken = ""
        pattern = walker_pattern_name(position + 1)
        if speaker is not None:
            spoken = self._prompts.walker(walker.name)
            speaker.say(spoken)
            pattern = "chirp"
        playing: str | None = None
        try:
            self._buzzer.play(pattern, now)
            playing = self._buzzer.pattern
        except Exception:  # a buzzer problem must not stop the loop
            log.exception("walker pattern %s failed", pattern)
        choice = WalkerChoice(walker, now, position + 1, spoken, pattern, playing == pattern)
        self.choices.append(choice)
        self.beep = None  # a newer choice replaces the number still to be beeped
        if speaker is None and playing is not None:
            # The number is the only answer without a voice (the chirp's words are said
            # whatever the buzzer does): refused, or cut short later, it is beeped again.
            ends = now + get_pattern(pattern).period if choice.played else None
            self.beep = WalkerBeep(choice, self._safety.since, ends)
            if not choice.played:
                log.info(
                    "walker pattern %s refused (%s playing): played once it ends", pattern, playing
                )
        log.info("walker %d/%d chosen with the button: %s", position + 1, len(walkers), walker.name)
        if self._chosen is not None:
            try:
                self._chosen(walker.id)
            except Exception:
                log.exception("the walker chosen could not be handed to the courier")

    def refuse_start(self, speaker: Speaker | None) -> None:
        """A start asked with the button before the roster came: the words saying to start
        again in a moment. Started, the session would have been the default walker's (their
        sessions, progress, incidents) whoever was chosen, and the walker would have heard
        only the plan's first cue. No beeps: ``refused`` says "not armed", false on a belt
        that is armed (and :class:`~firmware.session.safety_words.SafetyWords` would say so);
        without a voice the missing first cue is the answer, as for any start not taken."""
        if speaker is not None:
            speaker.say(self._prompts.file.prompts.not_started_walkers)

    def watch_beep(self, now: float, under_way: bool) -> None:
        """The walker's number (:attr:`beep`) until it has played out: beeped once the
        buzzer is free if it was refused, again if it was cut short (another pattern before
        its end; not a stop by the controller — a caregiver's ``silence`` stops alarms only);
        dropped once stale — another walker
        chosen, the roster no longer has them at that number, the monitor left that STANDBY
        (arming: the walk's chirp; a fault), or a session under way. A few comparisons a
        tick while it waits: no wait, no I/O."""
        beep = self.beep
        assert beep is not None
        if not self._choice_holds(beep, under_way):
            self.beep = None
            log.info("walker pattern %s dropped: stale", beep.choice.pattern)
            return
        pattern = beep.choice.pattern
        playing = self._buzzer.pattern
        if beep.ends is None:
            if playing is not None:
                return  # the buzzer still busy
            try:
                self._buzzer.play(pattern, now)
                playing = self._buzzer.pattern
            except Exception:  # a buzzer problem must not stop the loop
                log.exception("walker pattern %s failed", pattern)
                self.beep = None
                return
            if playing == pattern:
                beep.ends = now + get_pattern(pattern).period
                log.info("walker pattern %s played late", pattern)
            return
        if playing == pattern:
            if now >= beep.ends:
                self.beep = None  # played out
            return
        if playing is None or now >= beep.ends - CUT_SLACK_S:
            self.beep = None  # played out, or stopped (a caregiver's ``silence`` is
            # for alarms and leaves it playing: firmware.app.silence_alarm)
            return
        beep.ends = None  # cut short: beeped again once the buzzer is free
        log.info("walker pattern %s cut short by %s: played again once it ends", pattern, playing)

    def _choice_holds(self, beep: WalkerBeep, under_way: bool) -> bool:
        """The beeped number still names the walker chosen, in the STANDBY it was chosen in."""
        choice = beep.choice
        safety = self._safety
        walkers = self.walkers
        return (
            self.walker == choice.walker
            and choice.position <= len(walkers)
            and walkers[choice.position - 1] == choice.walker
            and safety.state is SafetyState.STANDBY
            and safety.since == beep.since
            and not under_way
        )
