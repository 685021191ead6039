"""The device interfaces the firmware programs against.

Small ``typing.Protocol`` classes in the spirit of gpiozero's devices: each
backend (MPU-6050 over smbus2, gpiozero pins, simulations) implements one of
them, and the firmware never learns which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from core.samples import ImuSample

RelayDrive = Literal["static", "heartbeat"]


@runtime_checkable
class Imu(Protocol):
    """A source of timestamped inertial samples, paced by the sensor's own clock."""

    @property
    def sample_rate_hz(self) -> float:
        """The output data rate actually configured on the sensor."""
        ...

    def start(self) -> None:
        """Identify, reset and configure the sensor and start streaming.

        Raises :class:`hal.ImuIdentityError`, :class:`hal.ImuTimeoutError` or
        :class:`hal.ImuError`; never waits without a deadline.
        """
        ...

    def read_batch(self, timeout: float) -> Sequence[ImuSample]:
        """Wait up to ``timeout`` seconds for new samples and return them all, oldest first.

        Returns an empty sequence when nothing arrived in time. Raises
        :class:`hal.ImuFifoOverflowError` when samples were lost, and
        :class:`hal.ImuDisconnectedError` once transient bus errors outlast
        the retry budget. Timestamps are monotonic and strictly increasing.
        """
        ...

    def close(self) -> None:
        """Stop streaming and release the bus. Idempotent."""
        ...


@runtime_checkable
class PulseCountedImu(Imu, Protocol):
    """An IMU that reads more cheaply when told how many data-ready pulses came since its
    last read (:class:`hal.mpu6050.Mpu6050`: after one, it need not ask the FIFO's count)."""

    def read_signalled(self, pulses: int) -> Sequence[ImuSample]:
        """``read_batch(0.0)``, knowing ``pulses`` pulses came since the last read: the same
        samples and errors; the count only chooses how to read them."""
        ...


@runtime_checkable
class DataReady(Protocol):
    """The IMU's data-ready line: it counts the chip's pulses and lets the loop wait for them.

    The count is kept by the pin's edge callback, on whatever thread the pin
    factory runs it; :meth:`wait_for` blocks the loop without spinning and
    without taking a lock the callback holds.
    """

    @property
    def edges(self) -> int:
        """Pulses seen since the line was opened."""
        ...

    def wait_for(self, edges: int, timeout: float) -> int:
        """Wait until :attr:`edges` reaches ``edges`` or ``timeout`` seconds pass; return it."""
        ...

    def close(self) -> None:
        """Stop listening and give the pin back. Idempotent; never raises."""
        ...


@runtime_checkable
class Relay(Protocol):
    """The treadmill stop relay. Released (contact open) is the safe state.

    With ``drive == "heartbeat"`` every :meth:`hold` call produces one edge on
    the pin; the external retriggerable driver holds the coil only while
    edges keep coming, so a frozen caller drops the relay by itself. With
    ``drive == "static"`` :meth:`hold` sets a level.
    """

    @property
    def drive(self) -> RelayDrive: ...

    @property
    def holding(self) -> bool:
        """True while software is asking for the relay to be held."""
        ...

    def hold(self) -> None:
        """Ask for the relay to stay held for one more loop period."""
        ...

    def release(self) -> None:
        """Drop the relay now. Idempotent; never raises."""
        ...

    def close(self) -> None:
        """Release the relay and the pin. Idempotent; never raises."""
        ...


@runtime_checkable
class RelaySense(Protocol):
    """What the relay's contact really does, read back from the hardware.

    :class:`Relay` says what software *asks* for; the hold circuit, the
    latch and the relay's own mechanics decide. This input reports the
    outcome — with the recommended wiring (``wiring/README.md``, section 6)
    the relay's mechanically linked mirror contact — so the firmware can
    notice when the two disagree: a latch that let go on its own, a welded
    contact, a wiring fault.
    """

    @property
    def contact_closed(self) -> bool:
        """Whether the treadmill's key-loop contact reads closed now.

        One pin read: cheap enough for every loop iteration, never blocks,
        never raises. A cut or unplugged sense wire reads closed (see the
        wiring guide's fail-safe argument); after :meth:`close`, False.
        """
        ...

    def close(self) -> None:
        """Give the pin back. Idempotent; never raises."""
        ...


@runtime_checkable
class Buzzer(Protocol):
    """A buzzer that plays named patterns (see :mod:`hal.buzzer_patterns`).

    Patterns are advanced by :meth:`update`, called from the loop with the
    loop's clock, rather than by a background thread: playback is then
    deterministic on a simulated clock and costs no extra thread on a Pi Zero.
    """

    @property
    def pattern(self) -> str | None:
        """Name of the pattern playing now, or None when silent."""
        ...

    def play(self, pattern: str, now: float) -> None:
        """Start ``pattern`` at time ``now`` unless a higher-priority one is still playing.

        A lower-priority pattern never cuts a higher-priority one short (an
        alarm always wins), and asking for the pattern already playing keeps
        it running rather than restarting it; call :meth:`stop` first to
        override (see :class:`hal.buzzer_patterns.PatternPlayer`).
        ``ValueError`` for an unknown pattern name.
        """
        ...

    def update(self, now: float) -> None:
        """Set the output for time ``now``; silence once a finite pattern ends."""
        ...

    def stop(self) -> None:
        """Silence the buzzer. Idempotent; never raises."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Button(Protocol):
    """The local reset push-button, debounced."""

    @property
    def is_pressed(self) -> bool: ...

    def take_presses(self) -> list[float]:
        """Return the monotonic times of presses since the last call, oldest first.

        Non-blocking and safe to call from the real-time thread.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class PressEdges(Protocol):
    """A button that also reports releases, for press patterns (double press, long press).

    Optional beside :class:`Button`: :class:`hal.gpio.GpioButton` has it; code
    that wants it checks ``isinstance(button, PressEdges)``. Its queue is
    independent of :meth:`Button.take_presses`, so reading one never steals
    from the other.
    """

    def take_edges(self) -> list[tuple[float, bool]]:
        """Debounced ``(monotonic time, pressed)`` edges since the last call, oldest first.

        Each accepted press gives ``(t, True)``; the first release after it
        ``(t, False)``. Non-blocking and safe to call from the real-time thread.
        """
        ...


@runtime_checkable
class LostReleases(Protocol):
    """A button with :class:`PressEdges` whose pin factory may lose a release (a bounce filter
    that drops it), told so by the reader that found the button up with no release edge.

    Optional beside :class:`PressEdges`: :class:`hal.gpio.GpioButton` has it (the optional
    help button too, whose reader looks at :attr:`heard_down`).
    """

    @property
    def heard_down(self) -> bool:
        """A press was heard and no release since (nor one told lost): one attribute read."""
        ...

    def release_lost(self) -> None:
        """The press down by the edges was found up with no release edge: forget it, so the
        next press gives its press edge (gpiozero, still hearing the button down, heard no
        change at it). Non-blocking and safe to call from the real-time thread."""
        ...
