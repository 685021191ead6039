"""gpiozero mock pins that live on a :class:`core.clock.Clock` and can be watched.

gpiozero's :class:`~gpiozero.pins.mock.MockPin` is a good stateful fake, but it
stamps its history with the host's real ``time.monotonic()`` and offers no way
for a simulated circuit to hear about a change. RetroGuard's simulations run
on a :class:`~core.clock.SimClock`, so this module adds the two missing pieces
and nothing else:

* :class:`ClockedMockFactory` — a ``MockFactory`` whose ``ticks()`` and whose
  pins read the shared clock;
* :class:`ObservedMockPin` — a ``MockPin`` that records its history on that
  clock and calls listeners ``(t, state)`` on every change of level, whether
  the change came from an output device writing it or a test driving an
  input with ``drive_low()`` / ``drive_high()``.

Everything else (reservations, pulls, ``when_changed`` dispatch, devices) is
gpiozero's own code, so the devices under test are the real ones.

Note that ``MockPin`` (gpiozero 2.0.1) stores ``bounce`` but does not
implement it: every edge a test drives reaches the device. Debouncing is
therefore :class:`hal.gpio.GpioButton`'s job, on every backend.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, MutableSequence
from typing import Any

from core.clock import Clock
from hal.gpiozero_import import lazy_lookups

with lazy_lookups():  # mock pins without importlib.metadata/.resources (hal.gpiozero_import)
    from gpiozero.pins.mock import MockFactory, MockPin, PinState

PinListener = Callable[[float, bool], None]
"""Called as ``listener(t, state)`` with the clock time of a change and the new level."""


class ClockedMockFactory(MockFactory):  # type: ignore[misc]  # gpiozero is untyped
    """A ``MockFactory`` on a RetroGuard clock, creating :class:`ObservedMockPin` pins.

    ``max_states`` bounds each pin's recorded history (oldest dropped), so a
    long demo that toggles a heartbeat pin 100 times a second does not grow
    without limit; None (the default, right for tests) keeps everything.
    """

    def __init__(
        self, clock: Clock, *, max_states: int | None = None, revision: str | None = None
    ) -> None:
        self.clock = clock
        self.max_states = max_states
        super().__init__(revision=revision, pin_class=ObservedMockPin)

    def ticks(self) -> float:
        """Factory ticks are the shared clock's seconds (gpiozero's own timing uses these)."""
        return self.clock.monotonic()

    def observed_pin(self, name: int | str) -> ObservedMockPin:
        """The pin ``name`` (created on first use; the same object the devices use)."""
        pin = self.pin(name)
        if not isinstance(pin, ObservedMockPin):
            raise TypeError(f"pin {name!r} is a {type(pin).__name__}, not an ObservedMockPin")
        return pin


class ObservedMockPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """A ``MockPin`` stamped by the factory's clock that reports every change.

    ``states`` keeps gpiozero's format (each entry's timestamp is the time
    since the previous change) so ``assert_states_and_times`` still works;
    :attr:`transitions` holds the same changes with absolute clock times,
    which is what RetroGuard's tests compare.

    Listeners run synchronously in the thread that changed the pin, after
    the new level is stored, and before gpiozero's own ``when_changed``
    dispatch for inputs. An exception in a listener propagates to the code
    that changed the pin: in a simulation that is a bug worth seeing.
    """

    # Attributes MockPin creates, annotated for mypy (gpiozero is untyped).
    _state: bool
    _last_change: float
    states: MutableSequence[Any]

    def __init__(self, factory: Any, info: Any) -> None:
        if not isinstance(factory, ClockedMockFactory):
            raise TypeError("ObservedMockPin needs a ClockedMockFactory (it reads its clock)")
        self._clock: Clock = factory.clock
        self._max_states: int | None = factory.max_states
        self._listeners: list[PinListener] = []
        self._read_hook: Callable[[], None] | None = None
        self._in_read_hook = False
        self.transitions: MutableSequence[tuple[float, bool]] = deque(maxlen=self._max_states)
        super().__init__(factory, info)

    def add_listener(self, listener: PinListener) -> None:
        """Call ``listener(t, state)`` on every future change of level."""
        self._listeners.append(listener)

    def remove_listener(self, listener: PinListener) -> None:
        """Stop calling ``listener``; a listener that was never added is ignored."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def set_read_hook(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook()`` before gpiozero reads this pin (None: stop).

        For inputs driven by a lazily evaluated model (the relay's contact
        sense): the hook brings the model, and the level it drives, up to the
        clock's now, so a device reads what the circuit shows at that
        instant. :attr:`level` does not call it: models read levels too.
        """
        self._read_hook = hook

    def _get_state(self) -> bool:
        hook = self._read_hook
        if hook is not None and not self._in_read_hook:
            self._in_read_hook = True
            try:
                hook()
            finally:
                self._in_read_hook = False
        return bool(self._state)

    @property
    def level(self) -> bool:
        """The electrical level now (True = high), whatever the pin's function."""
        return bool(self._state)

    def _change_state(self, value: Any) -> bool:
        # Same contract as MockPin._change_state, but on the shared clock.
        value = bool(value)
        if self._state == value:
            return False
        t = self._clock.monotonic()
        self._state = value
        self.states.append(PinState(t - self._last_change, value))
        self._last_change = t
        self.transitions.append((t, value))
        for listener in tuple(self._listeners):
            listener(t, value)
        return True

    def limit_history(self, max_states: int) -> None:
        """Keep only the newest ``max_states`` changes from now on (a pin that toggles at the
        sample rate would otherwise hold the factory's whole allowance)."""
        self._max_states = max_states
        self.states = deque(self.states, maxlen=max_states)
        self.transitions = deque(self.transitions, maxlen=max_states)

    def clear_states(self) -> None:
        """Forget the history; the current level becomes the first entry (as in MockPin)."""
        self._last_change = self._clock.monotonic()
        self.states = deque([PinState(0.0, self._state)], maxlen=self._max_states)
        self.transitions = deque(maxlen=self._max_states)
