"""What the safety controller's state means to the walker, said in words.

The walker on the belt cannot see a screen, and the buzzer's patterns — a refused press,
a call for help sent and answered, a trip's alarm — are beeps nobody remembers under
stress. :class:`SafetyWords` watches the safety controller (read-only) and the buzzer and
queues the sentence that says what happened and what to do: why the belt will not arm,
that help was called (and answered), how to go on after a trip, that no caregiver would
be paged. It only reads and queues sentences (a put to the speaker's thread): it never
touches the relay or plays a pattern, and it decides nothing. The session runner owns one
and calls :meth:`SafetyWords.tell` once a loop iteration, with the speaker while it can be
heard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.protocol.messages import SENSOR_NOT_WORN
from firmware.safety import (
    LET_GO_REASON,
    NOT_READY_REASON,
    NOT_UPRIGHT_REASON,
    PRESSED_TWICE_REASON,
    STILL_MEASURING_REASON,
    FaultClass,
    SafetyState,
)
from firmware.session.cues import Speaker
from firmware.session.safety_view import SafetyView
from firmware.session.voice import Prompts
from hal.interfaces import Buzzer

log = logging.getLogger(__name__)


class SafetyWords:
    """The spoken safety prompts, each said once for the moment it is about (on the loop
    thread: a few comparisons a tick, no wait, no I/O)."""

    def __init__(
        self,
        safety: SafetyView,
        buzzer: Buzzer,
        prompts: Prompts,
        caregivers_away: Callable[[], bool] | None = None,
        caregivers_undecided: Callable[[], bool] | None = None,
    ) -> None:
        self._safety = safety
        self._buzzer = buzzer
        self._prompts = prompts
        self._told_not_worn = False
        self._buzzer_seen: str | None = None
        """The buzzer's pattern at the last look: a help pattern's prompt is said once, as
        the pattern starts."""
        self._told_trip: float | None = None
        """The trip (its TRIPPED state's ``since``) the walker was told what to do after: the
        trip prompt is said once a trip."""
        self._caregivers_away = caregivers_away
        """Whether a caregiver service is expected and not there (the courier's word, through
        the link: one attribute read); None: nobody to ask (no courier, no broker)."""
        self._caregivers_undecided = caregivers_undecided
        """Whether the courier cannot say yet (its broker connection under way); None: never."""
        self._told_arming: float | None = None
        """The arming (its ARMED state's ``since``) the caregiver service was last looked at."""
        self._arming_undecided = False
        """At that arming the courier could not say yet: looked at again each tick of it
        until it can (at most the courier's grace, ten seconds or so)."""
        self._trip_words_out: str | None = None
        """The trip's words queued (the sentence said) while the walker has not left TRIPPED
        since: leaving withdraws them, so the cue of a resumed interval does not wait ~10 s
        behind them."""

    def tell(self, speaker: Speaker | None) -> None:
        """Once a loop iteration: whatever is due, in this order (the not-worn and help
        patterns' words before the trip's). ``speaker`` None (nobody would hear): nothing."""
        if speaker is None:
            return
        self._not_worn(speaker)
        self._help(speaker)
        self._trip(speaker)
        self._no_caregiver(speaker)

    def _not_worn(self, speaker: Speaker) -> None:
        """Say why the belt will not arm (or stopped) when the sensor shows no body.

        Only when the safety controller has just signalled it to the walker — a refused reset
        press (its ``not_worn`` buzzer pattern) or the FAULT of a sensor that fell off — not
        while the sensor merely lies on the console with nobody there."""
        safety = self._safety
        signalled = safety.reason.startswith(SENSOR_NOT_WORN) and (
            self._buzzer.pattern == "not_worn" or safety.state is SafetyState.FAULT
        )
        if signalled and not self._told_not_worn:
            speaker.say(self._prompts.file.prompts.not_worn)
            log.info("said: %s", self._prompts.file.prompts.not_worn)
        self._told_not_worn = signalled

    def _help(self, speaker: Speaker) -> None:
        """Say what the help patterns mean as they start: that the call for help went out
        (``help_sent``), and that a caregiver answered it (``help_answered``); and why a
        reset press was refused (``refused``: let go before the chirp, lying, or else).

        The walker who pressed three times, perhaps on the floor, hears only beeps
        otherwise — two groups of four, or a long beep and three quick ones — patterns
        nobody remembers under stress: the words tell them that help was called and, later,
        that someone has answered. Watched on the buzzer, as the not-worn prompt is (the
        runner sees the safety controller read-only), so a call repeated after its pattern
        ended is confirmed again in words."""
        pattern = self._buzzer.pattern
        if pattern == self._buzzer_seen:
            return  # the usual tick: one comparison
        self._buzzer_seen = pattern
        texts = self._prompts.file.prompts
        if pattern == "help_sent":
            spoken = texts.help_sent
        elif pattern == "help_answered":
            spoken = texts.help_answered
        elif pattern == "refused":
            # A reset press that did not arm: the beeps say "no", not why, and the commonest
            # why — let go before the chirp — is one the walker can put right at once.
            reason = self._safety.reason
            fault = self._safety.fault_class
            if fault is not None:  # FAULT: what is wrong, whatever the press was
                spoken = self._fault_words(fault)
            elif reason == LET_GO_REASON:
                spoken = texts.refused_hold
            elif reason == PRESSED_TWICE_REASON:
                spoken = texts.refused_twice
            elif reason in (STILL_MEASURING_REASON, NOT_READY_REASON):
                spoken = texts.refused_measuring  # wait a few seconds, then press again
            elif reason == NOT_UPRIGHT_REASON:
                spoken = texts.refused_lying
            else:
                spoken = texts.refused
        else:
            return
        speaker.say(spoken)
        log.info("said: %s", spoken)

    def _fault_words(self, fault: FaultClass) -> str:
        """Why a press in FAULT did not arm, in the fault class's words, and what to do."""
        texts = self._prompts.file.prompts
        match fault:
            case FaultClass.SENSOR:
                return texts.fault_sensor
            case FaultClass.NOT_WORN:
                return texts.not_worn
            case FaultClass.CONTACT:
                return texts.fault_contact
            case FaultClass.MONITOR:
                return texts.fault_monitor
            case FaultClass.STALL:
                return texts.fault_stall

    def _no_caregiver(self, speaker: Speaker) -> None:
        """At each arming, when a caregiver service is expected and not there, say that
        caregivers will not be called (``no_caregiver``).

        The caregiver service is the one thing that pages a caregiver after a fall; while it is
        down the belt still stops on a fall, and the walker should know that nobody would come.
        Words only, queued once an arming: arming is never delayed or refused for it (the belt's
        safety does not depend on the network), and nothing here reaches the relay or the
        buzzer. On the loop thread: one state comparison a tick, and at an arming one attribute
        read the link's reader thread set (:attr:`CourierLink.caregivers_away`).

        An arming while the courier cannot say yet (:attr:`CourierLink.caregivers_undecided`:
        the broker connection just started, its first attempt neither answered nor failed) is
        told nothing then, and looked at again each tick of that arming until it can: the
        words come once the attempt fails (or the service's retained ``offline`` arrives),
        and never when it is heard online — a normal start says nothing."""
        if self._caregivers_away is None:
            return
        safety = self._safety
        if safety.state is not SafetyState.ARMED:
            return  # the usual tick
        if safety.since == self._told_arming and not self._arming_undecided:
            return  # the usual tick
        self._told_arming = safety.since
        if self._caregivers_away():
            self._arming_undecided = False
            spoken = self._prompts.file.prompts.no_caregiver
            speaker.say(spoken)
            log.info("said: %s", spoken)
        else:
            undecided = self._caregivers_undecided
            self._arming_undecided = undecided is not None and undecided()

    def _trip(self, speaker: Speaker) -> None:
        """After a trip, once the buzzer is quiet, say what the walker can do: re-arm (press
        and hold reset until the chirp) or call for help (three quick presses).

        The alarm beeps until a press or a caregiver's silence ends it, and then nothing
        tells a walker who has just stumbled or fallen how to go on; the words name the
        button's own press patterns (docs/safety.md). Said once a trip (a trip is its
        TRIPPED state's ``since``), and only while the buzzer plays nothing — not over the
        alarm, nor over a ``help_sent``, ``refused`` or ``not_worn`` pattern, whose own
        words (:meth:`_help`, :meth:`_not_worn`) are queued first. A walker who
        re-arms while the alarm still sounds is told nothing. It only reads the safety
        controller and the buzzer, and only queues a sentence: no relay, no pattern."""
        safety = self._safety
        if safety.state is not SafetyState.TRIPPED:
            said = self._trip_words_out
            if said is not None:  # re-armed (or faulted) while they may still be playing
                self._trip_words_out = None
                speaker.withdraw(said)
            return  # the usual tick: not tripped
        if self._buzzer.pattern is not None:
            return  # the alarm still sounding
        since = safety.since
        if since == self._told_trip:
            return
        self._told_trip = since
        texts = self._prompts.file.prompts
        # Help called in this incident and not answered yet: "help has been called", not how
        # to call it — the walker who just did would take it that their call was not heard.
        spoken = texts.tripped_help_called if safety.help_waiting else texts.tripped
        speaker.say(spoken)
        self._trip_words_out = spoken
        log.info("said: %s", spoken)
