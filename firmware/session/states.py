"""The guided session's states, what moves it between them, and the one table of both.

:data:`SESSION_TRANSITIONS` is the only set of transitions the session runner
(:mod:`firmware.session.runner`) makes; its module docstring and docs/sessions.md draw the
same table (a test keeps the three equal). Why a session is paused is a :class:`PauseCause`:
a pause the walker asked for stays until the walker resumes (:data:`WALKER_CAUSES`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from firmware.fsm import TransitionTable


class SessionState(StrEnum):
    IDLE = "IDLE"
    BALANCE = "BALANCE"
    """The standing balance check before the walk: only while the monitor is in STANDBY."""
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FINISHED = "FINISHED"


class SessionTrigger(StrEnum):
    """What may move the session from one state to another: the table's edge labels."""

    START_ARMED = "start (armed)"
    START_NOT_ARMED = "start (not armed)"
    """Starting never arms: the session waits, paused, for the walker to arm."""
    START_BALANCE = "start (standby, balance check)"
    """Started in STANDBY with ``session.balance_check``: the check comes first."""
    CHECK_DONE = "check done"
    """The balance check's 30 s (twice with the eyes-closed variant) are over: the session
    waits for the walker to arm."""
    ARMED_DURING_CHECK = "armed during the check"
    """The walker armed (the reset button) before the check ended: it is cut short, and the
    walk begins. The check never measures while armed."""
    PAUSE = "pause"
    """The walker's pause; over a pause of another cause it makes that pause the walker's."""
    RESUME_ARMED = "resume (armed)"
    RESUME_NOT_ARMED = "resume (not armed)"
    """The walker's resume while the monitor is not ARMED: resumes once armed."""
    DISARMED = "trip or fault"
    """The safety controller left ARMED."""
    REARMED = "re-armed"
    """The controller is ARMED again and the pause was not the walker's."""
    PLAN_ENDS = "plan ends"
    STOP = "stop"
    MAX_PAUSE = "max pause"
    """PAUSED for ``session.max_pause_s``: the session is abandoned."""


class PauseCause(StrEnum):
    """Why a session is paused."""

    WAITING_FOR_ARMING = "waiting for arming"
    """Started (or resumed) while the monitor was not ARMED."""
    TRIP = "trip"
    """The controller tripped (a stumble or a fall)."""
    FAULT = "fault"
    """The controller left ARMED other than by a trip: by its table, to FAULT."""
    BUTTON = "button"
    """The walker's double press."""
    CLI = "cli"
    """A local command (``retroguard session pause``, or any caller of the runner's
    :meth:`~firmware.session.runner.SessionRunner.request`)."""


WalkerCause = Literal[PauseCause.BUTTON, PauseCause.CLI]
WALKER_CAUSES = frozenset({PauseCause.BUTTON, PauseCause.CLI})
"""Pauses that stay until the walker resumes: re-arming does not end them."""

_St = SessionState
_Tr = SessionTrigger
SESSION_TRANSITIONS: TransitionTable[SessionState, SessionTrigger] = TransitionTable(
    {
        _St.IDLE: {
            _St.RUNNING: _Tr.START_ARMED,
            _St.PAUSED: _Tr.START_NOT_ARMED,
            _St.BALANCE: _Tr.START_BALANCE,
        },
        _St.BALANCE: {
            _St.PAUSED: (_Tr.CHECK_DONE, _Tr.PAUSE, _Tr.DISARMED),
            _St.RUNNING: _Tr.ARMED_DURING_CHECK,
            _St.FINISHED: _Tr.STOP,
        },
        _St.RUNNING: {
            _St.PAUSED: (_Tr.PAUSE, _Tr.DISARMED),
            _St.FINISHED: (_Tr.PLAN_ENDS, _Tr.STOP),
        },
        _St.PAUSED: {
            _St.PAUSED: (_Tr.PAUSE, _Tr.RESUME_NOT_ARMED),
            _St.RUNNING: (_Tr.RESUME_ARMED, _Tr.REARMED),
            _St.FINISHED: (_Tr.STOP, _Tr.MAX_PAUSE),
        },
        _St.FINISHED: {
            _St.RUNNING: _Tr.START_ARMED,
            _St.PAUSED: _Tr.START_NOT_ARMED,
            _St.BALANCE: _Tr.START_BALANCE,
        },
    }
)
"""The only transitions the runner makes; it starts IDLE."""
