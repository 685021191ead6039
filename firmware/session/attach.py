"""Adding a guided session to a built monitor app, and taking it off again.

:func:`attach_session` builds the :class:`~firmware.session.runner.SessionRunner` from the
app's config and parts (its safety controller read-only, its buzzer, its reset button's
edges, the courier link's plans, roster and record put, the speaker, the measurement
thread, the local control socket) and adds it to the monitor loop's ``on_iteration`` hooks;
:func:`detach_session` takes it off, stops what it started and sees the records stored.
Nothing here can arm: see :mod:`firmware.session.runner`. :mod:`firmware.session.runner`
exports these names too (the runner imports this module; this one imports the runner when
called).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.mounting import Mounting
from core.wallclock import WallClock
from firmware.gait.worker import MAX_BACKLOG_S, Measurements
from firmware.session.cues import Speaker, compressed_patterns
from firmware.session.plan import Plan
from firmware.session.voice import Prompts
from hal.gpio import GpioBuzzer
from hal.interfaces import PressEdges

if TYPE_CHECKING:
    from firmware.app import App
    from firmware.config import Config
    from firmware.session.runner import SessionRunner

log = logging.getLogger(__name__)


def attach_session(
    app: App,
    plan: Plan | None = None,
    *,
    record: bool = True,
    speaker: Speaker | None = None,
    control_socket: str | None = None,
    time_scale: float = 1.0,
    gait_backlog_s: float = MAX_BACKLOG_S,
    wall: WallClock | None = None,
) -> SessionRunner:
    """Add a guided session to a built app: an ``on_iteration`` hook; returns the runner.

    ``plan`` defaults to ``app.config.session.plan``. With ``record`` the
    sessions go, through the courier, to the app's SQLite database (table ``sessions``) and, when
    MQTT is configured, through the outbox as ``.../session`` summaries. With
    ``control_socket`` (a path; "" = the config's or the runtime directory's)
    ``retroguard session start|pause|resume|stop|status`` can reach the runner. With
    ``session.measure_gait`` a measurement thread computes gait and sway
    (:mod:`firmware.gait.worker`; ``gait_backlog_s``: seconds of samples it may
    fall behind before blocks are dropped). ``wall``: the wall clock the records' times
    are read from, default the app's (:attr:`App.wall`: the host's, its "synchronised" read
    off the loop's thread, which runs the runner; the runner's own default would ask on
    it). Call :func:`detach_session` (before ``app.close``, which flushes the records to the
    courier) when done. Nothing here can arm: see the module docstring.
    """
    from firmware.session.plan import resolve_plan
    from firmware.session.runner import SessionRunner  # here: the runner imports this module

    config = app.config.session
    if plan is None:
        plan = resolve_plan(config.plan)
    prompts: Prompts | None = None
    if speaker is None:
        from firmware.session.voice import open_player

        speaker, prompts = open_player(
            config.voice,
            config.language,
            config.speech_rate_wpm,
            prompt_cache_dir(app.config),
            plan,
            real_hardware=app.config.gpio.backend == "gpiozero",
        )
    # The loop reads the reset button first (reset presses, help) and passes its edges on.
    button = app.monitor.press_edges if isinstance(app.gpio.button, PressEdges) else None
    measurements = None
    if config.measure_gait:
        measurements = Measurements(
            app.imu.sample_rate_hz,
            Mounting.parse(app.config.imu.mounting),
            bandwidth_hz=float(app.config.imu.dlpf_hz),
            max_backlog_s=gait_backlog_s,
        )
    runner = SessionRunner(
        plan,
        safety=app.controller,
        buzzer=app.gpio.buzzer,
        device_id=app.config.device.id,
        config=config,
        button=button,
        record=app.link.submit_session if record else None,
        speaker=speaker,
        prompts=prompts,
        time_scale=time_scale,
        measurements=measurements,
        new_plans=app.link.take_plan,
        new_roster=app.link.take_roster,
        walker_chosen=app.link.choose_walker,
        session_walker=app.link.session_walker_is,
        wall=wall if wall is not None else app.wall,
        caregivers_away=lambda: app.link.caregivers_away,
        caregivers_undecided=lambda: app.link.caregivers_undecided,
    )
    if control_socket is not None:
        from firmware.session.control import ControlServer, default_socket_path

        path = control_socket or config.control_socket or str(default_socket_path())
        control = ControlServer(path, runner)
        try:
            control.start()
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            if measurements is not None:
                measurements.close()
            if runner.speaker is not None:
                runner.speaker.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(
                [f"session.control_socket: cannot listen on {path}: {reason}"]
            ) from None
        runner.control = control
    app.monitor.chooses_walker = runner.chooses_walker
    hooks = app.monitor.on_iteration
    # Before the link's poll: a record the runner hands over goes out in the same iteration,
    # in one piece with the event that caused it (a trip's: one transaction at the courier,
    # docs/sessions.md "A trip in the last moments"); after it, it went an iteration later.
    at = hooks.index(app.link.poll) if app.link.poll in hooks else len(hooks)
    hooks.insert(at, runner)
    if app.status_light is not None:
        app.status_light.interval_now = runner.interval_now
        app.status_light.flash_s = app.status_light.FLASH_S / time_scale
    buzzer = app.gpio.buzzer
    if time_scale != 1 and isinstance(buzzer, GpioBuzzer):  # the demos' compressed plans
        buzzer.faster = compressed_patterns(time_scale)
        runner.compress_cues(buzzer.faster)
    return runner


def prompt_cache_dir(config: Config) -> Path:
    """Where the spoken prompts are rendered: ``session.prompt_cache``, else ``prompts/``
    beside the event store (the service's state directory, writable by it)."""
    if config.session.prompt_cache:
        return Path(config.session.prompt_cache)
    return Path(config.storage.database).parent / "prompts"


def detach_session(app: App, runner: SessionRunner, timeout: float = 5.0) -> None:
    """Remove the hook, stop the control socket and speech, and see the records stored.

    Call once the loop has stopped (it pumps the courier link on this thread)
    and before ``app.close()``: when it returns, every session record handed
    over is on disk, or ``timeout`` has passed (logged).
    """
    if runner in app.monitor.on_iteration:
        app.monitor.on_iteration.remove(runner)
    if app.monitor.chooses_walker == runner.chooses_walker:
        app.monitor.chooses_walker = None
    app.link.session_walker_is(None)  # no session of this runner's is under way any more
    if app.status_light is not None:
        app.status_light.interval_now = None
        app.status_light.flash_s = app.status_light.FLASH_S
    if isinstance(app.gpio.buzzer, GpioBuzzer):
        app.gpio.buzzer.faster = {}
    runner.settle_measurements(timeout)
    if runner.measurements is not None:
        runner.measurements.close()
    if app.supervisor is not None and not app.link.flush(timeout):
        log.error("session records not confirmed on disk within %.0f s", timeout)
    if runner.control is not None:
        runner.control.close()
        runner.control = None
    if runner.speaker is not None:
        runner.speaker.close()
