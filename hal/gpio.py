"""gpiozero backends for the relay (and its contact read back), buzzer, reset button, LED.

Every device here takes its pin factory as an argument and passes it to
gpiozero explicitly (``pin_factory=...``): gpiozero's global
``Device.pin_factory`` fallback guesses a factory at first use, which on a
development machine means warnings and then ``BadPinFactory``, and on a Pi
means a factory nobody chose. :func:`pin_factory_for` builds one by name.

Nothing here starts a thread: the buzzer and LED are advanced by
``update(now)`` from the monitor loop, so their timing follows the loop's
clock (simulated or real) and costs no thread on a Pi Zero. For the same
reason the button is a ``DigitalInputDevice`` rather than gpiozero's
``Button``, whose hold-detection thread we would never use and whose
``close()`` waits on it (up to ``hold_time``, 1 s, if the button is held).

Safety notes that shape this module:

* The relay is constructed released (``initial_value=False``) and
  :meth:`GpioRelay.release` never raises: releasing is what the caller does
  when everything else has gone wrong.
* When the process exits gpiozero returns pins to inputs, where they float
  (0.9 to 1.9 V has been seen with lgpio). The released state must therefore be
  guaranteed by a pull resistor on the driver input, not by this code.
* A wrong ``drive`` setting fails safe: heartbeat software on static wiring
  chatters the coil and releases it on :meth:`~GpioRelay.release`; static
  software on heartbeat wiring gives the monostable no edges, so the relay
  never holds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from core.clock import Clock
from core.realtime import SchedulingPolicy
from hal.buzzer_patterns import Pattern, PatternPlayer, get_pattern
from hal.errors import HalError
from hal.gpiozero_import import lazy_lookups
from hal.interfaces import RelayDrive

with lazy_lookups():  # without importlib.metadata/.resources (hal.gpiozero_import)
    # From their own modules: the package's __init__ would import every device gpiozero has.
    from gpiozero.input_devices import DigitalInputDevice
    from gpiozero.output_devices import LED, DigitalOutputDevice
    from gpiozero.output_devices import Buzzer as _GpiozeroBuzzer

log = logging.getLogger(__name__)

PIN_FACTORY_NAMES = ("lgpio", "rpigpio", "native", "pigpio", "mock")
_PI_EXTRA_HINT = "install the Pi extras: pip install 'retroguard[pi]'"


# -- pin factories --------------------------------------------------------------


def _lgpio_workdir() -> str | None:
    """Choose where lgpio puts its notification FIFO (``.lgd-nfy*``).

    lgpio creates the FIFO in ``$LG_WD`` (default: the current directory) the
    moment it is imported, and crashes on import if ``LG_WD`` names a missing
    directory. Under systemd the unit's ``RuntimeDirectory=`` (exported as
    ``$RUNTIME_DIRECTORY``, colon-separated when there are several) is the
    right place: private, and removed when the service stops.
    """
    workdir = os.environ.get("LG_WD")
    if workdir is None:
        runtime = os.environ.get("RUNTIME_DIRECTORY")
        if runtime:
            workdir = runtime.split(":")[0]
            os.environ["LG_WD"] = workdir
    if workdir is not None and not os.path.isdir(workdir):
        raise HalError(f"LG_WD={workdir!r} is not a directory; lgpio cannot create its FIFO there")
    return workdir


def _make_lgpio() -> Any:
    _lgpio_workdir()
    cwd = os.getcwd()
    try:
        # Importing lgpio with LG_WD set chdir()s the whole process into
        # LG_WD (seen with lgpio 0.2.2.0); its FIFO is opened during the
        # import, so the original directory can be restored right after.
        from gpiozero.pins.lgpio import LGPIOFactory
    except ImportError as exc:
        raise HalError(
            f"pin factory 'lgpio': the lgpio module is missing; {_PI_EXTRA_HINT}"
        ) from exc
    except Exception as exc:
        raise HalError(f"pin factory 'lgpio': importing lgpio failed: {exc}") from exc
    finally:
        if os.getcwd() != cwd:
            os.chdir(cwd)
    try:
        return LGPIOFactory()
    except Exception as exc:
        raise HalError(
            f"pin factory 'lgpio' unavailable: {exc} "
            "(not a Raspberry Pi, or no read/write access to /dev/gpiochip*?)"
        ) from exc


def _make_rpigpio() -> Any:
    try:
        from gpiozero.pins.rpigpio import RPiGPIOFactory
    except ImportError as exc:
        raise HalError(
            f"pin factory 'rpigpio': the RPi.GPIO module is missing; {_PI_EXTRA_HINT}"
        ) from exc
    except RuntimeError as exc:
        # RPi.GPIO refuses to import anywhere but on a Pi.
        raise HalError(f"pin factory 'rpigpio' only works on a Raspberry Pi: {exc}") from exc
    try:
        return RPiGPIOFactory()
    except Exception as exc:
        raise HalError(
            f"pin factory 'rpigpio' unavailable: {exc} "
            "(RPi.GPIO cannot drive a Pi 5's GPIO: use 'lgpio' there)"
        ) from exc


def _make_native() -> Any:
    from gpiozero.pins.native import NativeFactory

    try:
        return NativeFactory()
    except Exception as exc:
        raise HalError(f"pin factory 'native' unavailable (not a Raspberry Pi?): {exc}") from exc


def _make_pigpio() -> Any:
    try:
        from gpiozero.pins.pigpio import PiGPIOFactory
    except ImportError as exc:
        raise HalError("pin factory 'pigpio': the pigpio module is missing") from exc
    banner = io.StringIO()
    try:
        # pigpio prints a multi-line banner to stdout when the daemon is absent.
        with contextlib.redirect_stdout(banner):
            return PiGPIOFactory()
    except Exception as exc:
        raise HalError(f"pin factory 'pigpio' unavailable (is pigpiod running?): {exc}") from exc


def _make_mock() -> Any:
    with lazy_lookups():
        from gpiozero.pins.mock import MockFactory

    return MockFactory()


_FACTORY_MAKERS = {
    "lgpio": _make_lgpio,
    "rpigpio": _make_rpigpio,
    "native": _make_native,
    "pigpio": _make_pigpio,
    "mock": _make_mock,
}


def pin_factory_for(name: str) -> Any:
    """Build the gpiozero pin factory called ``name`` ("lgpio", "rpigpio", ...).

    Pi libraries are imported only here, only for the factory asked for, so
    a development machine never imports ``RPi.GPIO`` (which raises off a Pi)
    or ``lgpio`` (which creates a FIFO in the current directory). Any failure
    — unknown name, library missing, not a Pi, daemon absent — is a
    :class:`hal.HalError` whose message says what to do. ``"mock"`` is
    gpiozero's plain MockFactory on real time; simulations want
    :class:`sim.pins.ClockedMockFactory` instead.

    The result is meant to be passed to each device; it is never installed
    as gpiozero's global default.
    """
    try:
        maker = _FACTORY_MAKERS[name]
    except KeyError:
        raise HalError(
            f"unknown pin factory {name!r}; choose one of {', '.join(PIN_FACTORY_NAMES)}"
        ) from None
    return maker()


def _open_device(what: str, pin: int | str, make: Any) -> Any:
    try:
        return make()
    except Exception as exc:
        raise HalError(f"cannot open the {what} on GPIO {pin}: {exc}") from exc


# -- relay ----------------------------------------------------------------------


class GpioRelay:
    """The treadmill stop relay (see :class:`hal.interfaces.Relay`).

    ``drive="static"``: :meth:`hold` sets the pin active; the pin level is
    the coil. ``drive="heartbeat"``: every :meth:`hold` toggles ``pin`` — one
    edge — and the external retriggerable driver keeps the coil held only
    while edges keep coming, so a hung loop drops the relay by itself.

    ``enable_pin`` (heartbeat only, recommended) drives the hold timer's
    clear input: :meth:`hold` sets it active before sending its edge, and
    :meth:`release` sets it inactive first, clearing the timer at once —
    without it a release takes effect only when the timer lapses, ``hold_s``
    after the last edge. The enable pin is active-high whatever
    ``active_high`` says — it drives a 74HC123-style active-low CLR, so low
    (also what its pull-down gives a floating pin) means cleared.

    ``active_high`` is the polarity of the relay pin. Both pins are set to
    their released levels at construction, the enable pin first.
    """

    def __init__(
        self,
        pin: int | str,
        factory: Any,
        drive: RelayDrive = "heartbeat",
        active_high: bool = True,
        enable_pin: int | str | None = None,
    ) -> None:
        if drive not in ("static", "heartbeat"):
            raise ValueError(f"relay drive must be 'static' or 'heartbeat', not {drive!r}")
        if enable_pin is not None and drive != "heartbeat":
            raise ValueError(
                "enable_pin is the heartbeat timer's clear input: heartbeat drive only"
            )
        self._drive: RelayDrive = drive
        self._pin = pin
        self._enable_pin = enable_pin
        self._enable: Any = None
        if enable_pin is not None:
            # Opened first so the timer is held cleared before any edge can reach it.
            self._enable = _open_device(
                "relay enable",
                enable_pin,
                lambda: DigitalOutputDevice(
                    enable_pin, active_high=True, initial_value=False, pin_factory=factory
                ),
            )
        try:
            self._device = _open_device(
                "relay",
                pin,
                lambda: DigitalOutputDevice(
                    pin, active_high=active_high, initial_value=False, pin_factory=factory
                ),
            )
        except BaseException:
            if self._enable is not None:
                self._enable.close()
            raise
        self._active_high = active_high
        self._active: bool | None = False
        """The relay pin's level as this object last wrote it (True: active); None after a
        write failed, when only reading the pin can tell."""
        self._enable_on = False
        self._holding = False
        self._closed = False

    @property
    def drive(self) -> RelayDrive:
        return self._drive

    @property
    def holding(self) -> bool:
        """True between a :meth:`hold` and the next :meth:`release`."""
        return self._holding

    @property
    def pin_active(self) -> bool:
        """Whether the relay pin is at its active level now (diagnostics; not "relay closed")."""
        if self._closed:
            return False
        return bool(self._device.is_active)

    @property
    def enabled(self) -> bool:
        """Whether the hold timer's clear input is released (always False without one)."""
        if self._closed or self._enable is None:
            return False
        return bool(self._enable.is_active)

    def hold(self) -> None:
        """Ask for one more loop period of hold: one edge (heartbeat) or the active level.

        Raises :class:`hal.HalError` after :meth:`close` or when a pin
        cannot be written (the relay is released first in that case).
        """
        if self._closed:
            raise HalError("the relay is closed")
        try:
            if self._drive == "heartbeat":
                if self._enable is not None and not self._enable_on:
                    self._enable.on()
                    self._enable_on = True
                # One heartbeat edge: the relay pin inverted, written on the gpiozero pin (its
                # documented ``state``, the electrical level) from the level this object last
                # wrote, rather than ``toggle()``, which takes the device's lock, reads the pin
                # back and goes through the device's layers (about half a hold's cost), and
                # here rather than in a method of its own (a call every wake).
                active = self._active
                if active is None:
                    active = bool(self._device.is_active)
                self._active = None  # until the write below is known to have happened
                active = not active
                self._device.pin.state = active == self._active_high
                self._active = active
            else:
                self._device.on()
        except Exception as exc:
            self.release()
            raise HalError(f"cannot drive the relay on GPIO {self._pin}: {exc}") from exc
        self._holding = True

    def release(self) -> None:
        """Drop the relay: enable (if any) inactive first, then the relay pin. Never raises.

        With an enable pin the coil drops at once. Without one, heartbeat
        wiring drops it when the timer lapses, ``hold_s`` after the last edge
        (this call's own edge, if the pin was active).
        """
        self._holding = False
        if self._closed:
            return
        self._enable_on = False
        self._active = None
        for what, device, pin in (
            ("relay enable", self._enable, self._enable_pin),
            ("relay", self._device, self._pin),
        ):
            if device is None:
                continue
            try:
                device.off()
            except Exception:
                log.exception(
                    "%s release on GPIO %s failed; the hardware pull must drop it", what, pin
                )
            else:
                if device is self._device:
                    self._active = False

    def close(self) -> None:
        """Release the relay and give the pins back. Idempotent; never raises."""
        if self._closed:
            return
        self.release()
        self._closed = True
        for device in (self._enable, self._device):
            if device is None:
                continue
            try:
                device.close()
            except Exception:
                log.exception("closing a relay pin failed")


# -- relay contact feedback ----------------------------------------------------------


class GpioRelaySense:
    """The relay's contact, read back (see :class:`hal.interfaces.RelaySense`).

    Recommended wiring (``wiring/README.md``, section 6): K1's mirror
    contact — normally closed, mechanically linked to the key-loop contact —
    lights an optocoupler whose transistor pulls this pin low. So the pin
    reads **low while the relay is released** and **high while its key-loop
    contact is closed** (or welded), and every break in the chain — a cut
    wire, a dead optocoupler, an unplugged connector — lets the pull-up win
    and reads "closed". The firmware expects "open" whenever it is not
    holding the relay, so a break is reported at once, and it can never arm
    on it. The internal pull-up is enabled beside the external one, so a
    wire cut right at the header reads the same.

    A ``DigitalInputDevice`` with no callbacks: the loop polls it once per
    iteration; no thread, no queue.
    """

    def __init__(self, pin: int | str, factory: Any) -> None:
        self._pin = pin
        self._closed = False
        self._device = _open_device(
            "relay sense",
            pin,
            lambda: DigitalInputDevice(pin, pull_up=True, pin_factory=factory),
        )

    @property
    def contact_closed(self) -> bool:
        """High pin: the mirror contact is open, so the key-loop contact is closed."""
        if self._closed:
            return False
        try:
            # The pin's electrical level, read once an iteration without gpiozero's device
            # layers (pull_up=True makes its "active" the low level: mirror closed, released).
            return bool(self._device.pin.state)
        except Exception:
            log.exception("reading the relay sense on GPIO %s failed", self._pin)
            return True  # what a broken input reads: closed, i.e. "cannot confirm released"

    def close(self) -> None:
        """Give the pin back. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            self._device.close()
        except Exception:
            log.exception("closing the relay sense pin GPIO %s failed", self._pin)


# -- IMU data-ready line ----------------------------------------------------------


class _Wakeup(threading.Event):
    """A ``threading.Event`` for one waiting thread, on a bare lock: locked is "not set".

    ``threading.Event`` waits through a ``Condition``: each wait allocates a
    lock and queues it, each ``set`` takes the condition's lock and notifies,
    all in Python — some 10 µs of CPU a wake on this machine between the
    callback thread and the loop, 200 times a second. Here ``set`` releases
    one lock and ``wait`` acquires it with a timeout and lets go again: about
    half. Same contract for one waiter (the loop, the only one that clears it)
    and any setters; a subclass, so a :class:`core.clock.Clock` waits on it as
    on any event. A lost race on the release is caught with ``try``, not
    ``contextlib.suppress``, whose object and two calls cost three times as
    much, twice a wake.
    """

    def __init__(self) -> None:
        super().__init__()
        self._unset = threading.Lock()
        self._unset.acquire()

    def is_set(self) -> bool:
        return not self._unset.locked()

    def set(self) -> None:
        if self._unset.locked():
            try:
                self._unset.release()
            except RuntimeError:  # another setter came first
                return

    def clear(self) -> None:
        self._unset.acquire(False)

    def wait(self, timeout: float | None = None) -> bool:
        if not self._unset.acquire(True, -1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            self._unset.release()
        except RuntimeError:  # a set() while it was held released it
            return True
        return True


class GpioDataReady:
    """The MPU-6050's INT pin (see :class:`hal.interfaces.DataReady`).

    The driver sets the chip to pulse INT (active high, push-pull, 50 us)
    for every sample. gpiozero calls :meth:`_on_edge` for each rising edge
    — on the pin factory's callback thread with lgpio, in the driving thread
    on mock pins — and it only counts and, once the count the loop waits
    for is reached, sets a ``threading.Event``. The loop's
    :meth:`wait_for` waits on that event through the clock with a timeout,
    so it never blocks on the callback thread and never waits longer than
    the caller allows: a dead line costs one timeout, not a stall.

    Counting in the callback lets the loop sleep through several samples
    and read them in one FIFO burst: the callback runs per sample, the loop
    (and its I2C reads) once per wake.

    Under systemd the monitor runs ``SCHED_FIFO`` (priority 20), reset on
    fork, which on Linux also means new threads start at normal priority:
    lgpio's callback thread would count edges late on a busy Pi, and worse,
    could be preempted while it holds the GIL the loop needs. So the
    callback thread adopts the policy of the thread that opened the line
    (the loop's) on its first edge (:mod:`core.realtime`); after that the
    callback is a few bytecodes and cannot hold the loop off. The input has
    a pull-down, so a cut wire reads low and gives no edges at all.
    """

    def __init__(self, pin: int | str, factory: Any, clock: Clock) -> None:
        self._pin = pin
        self._clock = clock
        self._event: threading.Event = _Wakeup()
        self._edges = 0
        self._target = 1
        self._closed = False
        self._policy = SchedulingPolicy.of_this_thread()
        self._callback_thread: int | None = None
        self._device = _open_device(
            "IMU data-ready input",
            pin,
            lambda: DigitalInputDevice(pin, pull_up=False, pin_factory=factory),
        )
        # Counted at the pin (gpiozero's documented ``edges`` and ``when_changed``), on rising
        # edges only: each pulse's falling edge would be a second interrupt and dispatch that
        # says nothing, and the device's own events would track its state on every edge.
        line = self._device.pin
        line.edges = "rising"
        line.when_changed = self._on_edge

    def _on_edge(self, ticks: object = None, state: object = None) -> None:
        if threading.get_ident() != self._callback_thread:
            self._callback_thread = threading.get_ident()
            if self._policy is not None:
                self._policy.apply(f"the GPIO{self._pin} data-ready callback thread")
        # The only writer of _edges: one callback thread (lgpio), or mock pins driven in turn.
        self._edges += 1
        if self._edges >= self._target:
            self._event.set()

    @property
    def pin(self) -> int | str:
        return self._pin

    @property
    def edges(self) -> int:
        return self._edges

    def wait_for(self, edges: int, timeout: float) -> int:
        """Wait until ``edges`` pulses have been counted in all (or ``timeout``); the count."""
        self._target = edges
        if self._edges >= edges or self._closed:
            return self._edges
        self._event.clear()
        # An edge between the check above and clear() set the event too early: look again.
        if self._edges < edges:
            self._clock.wait(self._event, timeout)
        return self._edges

    def close(self) -> None:
        """Stop listening and give the pin back. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        self._event.set()
        try:
            self._device.close()
        except Exception:
            log.exception("closing the IMU data-ready pin GPIO %s failed", self._pin)


# -- buzzer and LED ---------------------------------------------------------------


class _PatternOutput:
    """A digital output whose level follows a :class:`PatternPlayer` (shared by buzzer and LED).

    The loop calls :meth:`update` every iteration (the buzzer) or every 10 ms (the LED, through
    :meth:`GpioStatusLed.show`), and a pattern's level changes every few hundred ms at most
    (silence, or ``armed``: never). So after a write it notes when the span ends
    (:meth:`PatternPlayer.level_until`), and until then, unless a new pattern is played
    (:meth:`_played`), an update is one comparison: the pin gets the same writes at the same
    calls for a fraction of the loop's time.
    """

    def __init__(self, what: str, pin: int | str, make: Any) -> None:
        self._what = what
        self._pin = pin
        self._device = _open_device(what, pin, make)
        self._player = PatternPlayer()
        self._level = False
        self._closed = False
        self._unchanged_until = -math.inf
        """Until when the player keeps the level last written (only after a write)."""

    def _played(self) -> None:
        """The player was told something new: the next update asks it again."""
        self._unchanged_until = -math.inf

    def _write(self, level: bool) -> None:
        if self._closed or level == self._level:
            return
        try:
            if level:
                self._device.on()
            else:
                self._device.off()
        except Exception as exc:
            raise HalError(f"cannot drive the {self._what} on GPIO {self._pin}: {exc}") from exc
        self._level = level

    def _silence(self) -> None:
        self._player.stop()
        self._played()
        try:
            self._write(False)
        except HalError:
            log.exception("silencing the %s failed", self._what)

    def update(self, now: float) -> None:
        """Set the output for time ``now``; a finite pattern falls silent when it ends."""
        if now < self._unchanged_until:
            return  # within the span last written: the level is the one on the pin
        level, until = self._player.level_until(now)
        self._unchanged_until = -math.inf  # a write that fails is tried again next call
        self._write(level)
        self._unchanged_until = until

    def close(self) -> None:
        """Switch off and give the pin back. Idempotent; never raises."""
        if self._closed:
            return
        self._silence()
        self._closed = True
        try:
            self._device.close()
        except Exception:
            log.exception("closing the %s pin GPIO %s failed", self._what, self._pin)


class GpioBuzzer(_PatternOutput):
    """An active (DC) buzzer playing :mod:`hal.buzzer_patterns` by name.

    Implements :class:`hal.interfaces.Buzzer`. Playback is tick-driven: the
    pin changes only inside :meth:`play` and :meth:`update`, at the ``now``
    the caller passes, so the loop's update rate bounds the timing error
    (5 ms at 200 Hz against 40 ms segments).

    Priority: :meth:`play` refuses a pattern of lower priority than the one
    still playing (an alarm is never replaced by a chirp), and leaves an
    already-playing pattern running rather than restarting it. Pass
    ``force=True``, or call :meth:`stop` first, to override.
    """

    def __init__(self, pin: int | str, factory: Any, active_high: bool = True) -> None:
        super().__init__(
            "buzzer",
            pin,
            lambda: _GpiozeroBuzzer(
                pin, active_high=active_high, initial_value=False, pin_factory=factory
            ),
        )
        self.faster: Mapping[str, Pattern] = {}
        """Patterns played in place of the ones of their names: a time-compressed session's
        cues (:func:`firmware.session.cues.compressed_patterns`, the demos); empty on a
        monitor, whose session runs in real time."""

    @property
    def pattern(self) -> str | None:
        """Name of the pattern playing (until an :meth:`update` finds it ended)."""
        current = self._player.pattern
        return None if current is None else current.name

    @property
    def is_on(self) -> bool:
        """Whether the buzzer is sounding right now."""
        return self._level

    def play(self, pattern: str, now: float, *, force: bool = False) -> None:
        """Start ``pattern`` at ``now`` subject to the priority rules above.

        Whether it was accepted shows in :attr:`pattern` afterwards. ValueError
        (listing the known names) for an unknown pattern.
        """
        self._player.play(self.faster.get(pattern) or get_pattern(pattern), now, force=force)
        self._played()
        self.update(now)

    def stop(self) -> None:
        """Silence the buzzer and forget the pattern. Idempotent; never raises."""
        self._silence()


class GpioStatusLed(_PatternOutput):
    """The status LED: steady on/off, or blinking advanced by :meth:`update`."""

    def __init__(self, pin: int | str, factory: Any, active_high: bool = True) -> None:
        super().__init__(
            "status LED",
            pin,
            lambda: LED(pin, active_high=active_high, initial_value=False, pin_factory=factory),
        )

    @property
    def is_lit(self) -> bool:
        return self._level

    @property
    def pattern(self) -> str | None:
        """Name of the pattern shown (None when steady or dark, or a finite one has ended)."""
        current = self._player.pattern
        return None if current is None else current.name

    def show(self, pattern: Pattern, now: float) -> None:
        """Show ``pattern`` from ``now`` (:mod:`hal.led_patterns`); the one already shown
        keeps its phase, any other replaces it at once (the LED shows a state, so the
        newest state wins: no priorities here)."""
        current = self._player.pattern
        if current is None or current.name != pattern.name:
            self._player.play(pattern, now, force=True)
            self._played()
        self.update(now)

    def on(self) -> None:
        """Light steadily (cancels blinking)."""
        self._player.stop()
        self._played()
        self._write(True)

    def off(self) -> None:
        """Go dark (cancels blinking). Never raises."""
        self._silence()

    def blink(self, on_s: float, off_s: float, now: float) -> None:
        """Blink from ``now``: ``on_s`` lit, ``off_s`` dark, until :meth:`on` or :meth:`off`.

        Calling it again with the same timing keeps the phase; other timing
        restarts the blink.
        """
        pattern = Pattern(f"blink {on_s}/{off_s}", ((on_s, off_s),), repeat=True, priority=0)
        # Same timing -> same name -> the player keeps it running (phase kept).
        self._player.play(pattern, now)
        self._played()
        self.update(now)


# -- reset button -----------------------------------------------------------------


class GpioButton:
    """The reset push-button (see :class:`hal.interfaces.Button`).

    A gpiozero ``DigitalInputDevice`` (``Button`` without the hold thread)
    reports presses from the pin factory's event thread; each press
    is stamped with ``clock.monotonic()`` and queued in a bounded deque that
    :meth:`take_presses` drains without taking any lock, so the real-time
    thread never waits on the callback thread.

    Debounce happens here, on every backend, because gpiozero's ``MockPin``
    does not implement ``bounce`` and the real factories disagree on what
    it means. A press counts only if the button had been released for at
    least ``bounce_s`` (or was never released before): contact chatter while
    pressing and while letting go — a release and a new press closer
    together than ``bounce_s`` — therefore yields one press. ``bounce_s`` is
    also passed to gpiozero as ``bounce_time`` where the factory supports it.
    A single isolated glitch still counts as a press; a press only *allows*
    re-arming, which the hardware latch confirms with the physical button.
    """

    MAX_QUEUED = 64
    """Presses kept between two :meth:`take_presses` calls (oldest dropped beyond)."""

    def __init__(
        self,
        pin: int | str,
        factory: Any,
        clock: Clock,
        *,
        pull_up: bool = True,
        bounce_s: float = 0.02,
        what: str = "reset button",
    ) -> None:
        """``what`` names the button in errors and logs (the optional help button is one too)."""
        if bounce_s < 0:
            raise ValueError("bounce_s must be >= 0")
        self._clock = clock
        self._bounce_s = bounce_s
        self._pin = pin
        self._what = what
        self._presses: deque[float] = deque(maxlen=self.MAX_QUEUED)
        self._edges: deque[tuple[float, bool]] = deque(maxlen=2 * self.MAX_QUEUED)
        self._down = False
        self._callback_lock = threading.Lock()
        self._last_release: float | None = None
        self._rejected = 0
        self._closed = False
        self._device = _open_device(
            what,
            pin,
            lambda: DigitalInputDevice(
                pin,
                pull_up=pull_up,
                bounce_time=bounce_s if bounce_s > 0 else None,
                pin_factory=factory,
            ),
        )
        self._device.when_activated = self._on_pressed
        self._device.when_deactivated = self._on_released
        self._released_level = pull_up
        """The pin's level with the button up (pulled up: high)."""
        self._release_lost = False
        """The loop found a release lost (:meth:`release_lost`): gpiozero still hears the
        button down. Set on the loop's thread (one store), cleared on the factory's."""
        self._quiet = False
        """gpiozero is hearing the lost release (:meth:`_pin_changed`): no edge, no bounce."""
        pin_events = self._device.pin
        self._heard: Callable[[Any, Any], None] = pin_events.when_changed
        """gpiozero's own handler of the pin's changes (the device's)."""
        pin_events.when_changed = self._pin_changed

    def _pin_changed(self, ticks: Any, state: Any) -> None:
        """Each change the pin factory reports (its event thread), passed on to gpiozero. After
        a release the loop found lost, a press is first heard as that release: gpiozero, which
        still heard the button down, heard no change at it (no press edge, a call for help's
        second press lost)."""
        if self._release_lost:
            self._release_lost = False
            if bool(state) != self._released_level:
                self._quiet = True
                try:
                    self._heard(ticks, self._released_level)
                finally:
                    self._quiet = False
        self._heard(ticks, state)

    def _on_pressed(self) -> None:
        t = self._clock.monotonic()
        with self._callback_lock:
            last_release = self._last_release
            if last_release is not None and t - last_release < self._bounce_s:
                self._rejected += 1
                return
            self._presses.append(t)
            self._edges.append((t, True))
            self._down = True

    def _on_released(self) -> None:
        if self._quiet:
            return  # a release the loop let go already (its edge) and bounce cannot follow
        t = self._clock.monotonic()
        with self._callback_lock:
            self._last_release = t
            if self._down:
                self._edges.append((t, False))
                self._down = False

    @property
    def is_pressed(self) -> bool:
        """The raw level now, not debounced (False after :meth:`close`)."""
        if self._closed:
            return False
        return bool(self._device.is_active)

    @property
    def heard_down(self) -> bool:
        """See :attr:`hal.interfaces.LostReleases.heard_down`."""
        return self._down and not self._release_lost

    def release_lost(self) -> None:
        """See :meth:`hal.interfaces.LostReleases.release_lost`. A release the pin factory
        dropped left gpiozero hearing the button down: at the next press it heard no change,
        and that press gave no press edge (only its release). The next change the factory
        reports, a press, is first heard as that release (:meth:`_pin_changed`). One store:
        the loop's thread never waits on the factory's (its callback's lock)."""
        self._release_lost = True

    @property
    def rejected(self) -> int:
        """Press edges ignored as bounce so far (diagnostics)."""
        return self._rejected

    def take_presses(self) -> list[float]:
        """Monotonic times of presses since the last call, oldest first. Never blocks."""
        if not self._presses:
            return []  # the usual call, once per loop iteration: no exception raised
        presses: list[float] = []
        while True:
            try:
                presses.append(self._presses.popleft())
            except IndexError:
                return presses

    def take_edges(self) -> list[tuple[float, bool]]:
        """Debounced ``(time, pressed)`` edges since the last call, oldest first. Never blocks.

        A second, independent queue beside :meth:`take_presses` (the safety
        controller's): every accepted press gives ``(t, True)`` and the first
        release after it ``(t, False)``, so a reader can tell press patterns
        (double, long) apart. See :class:`hal.interfaces.PressEdges`.
        """
        if not self._edges:
            return []
        edges: list[tuple[float, bool]] = []
        while True:
            try:
                edges.append(self._edges.popleft())
            except IndexError:
                return edges

    def close(self) -> None:
        """Stop listening and give the pin back. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            self._device.close()
        except Exception:
            log.exception("closing the %s pin GPIO %s failed", self._what, self._pin)


__all__ = [
    "PIN_FACTORY_NAMES",
    "GpioButton",
    "GpioBuzzer",
    "GpioDataReady",
    "GpioRelay",
    "GpioRelaySense",
    "GpioStatusLed",
    "pin_factory_for",
]
