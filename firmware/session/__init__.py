"""Guided retro-walking sessions: plans, cues, step counting, the session runner, the log.

A guided session follows a therapist's plan (intervals of backward, forward
or rest), cues each change on the buzzer (and, when configured, with spoken
prompts), measures the walking from the belt IMU and keeps a record per
interval. It rides on the monitor's loop as an ``on_iteration`` hook and
never touches the relay: arming stays the local reset button's job, a trip
pauses the session and re-arming resumes it. See ``docs/sessions.md``.

Modules: :mod:`.plan` (plans, presets, validation), :mod:`.cues` (buzzer
cues, spoken prompts), :mod:`.steps` (streaming step detector),
:mod:`.gestures` (button press patterns), :mod:`.runner` (the session state
machine, the loop hook) and its parts (:mod:`.states`, :mod:`.cue_player`,
:mod:`.safety_words`, :mod:`.walker_choice`, :mod:`.balance_check`, :mod:`.measuring`,
:mod:`.recording`, :mod:`.attach`: docs/sessions.md, "The runner's parts"), :mod:`.record`
(SQLite log, MQTT summary), :mod:`.control` (local Unix-socket control),
:mod:`.cli` (``retroguard session`` and ``retroguard sessions``),
:mod:`.demo` (a time-compressed guided session).

This package's ``__init__`` imports nothing, so :mod:`firmware.config` can
import :mod:`.config` without a cycle.
"""
