"""Models of the relay circuit outside the Pi, and a hand on the reset button.

Software only *asks* for the treadmill to run; the circuit decides. With the
recommended heartbeat wiring (``wiring/README.md``) the circuit is:

* a retriggerable monostable that stays active for ``hold_s`` after every
  edge (either direction) on the relay pin, so a hung loop or a pin stuck at
  either level drops the coil within ``hold_s``; its clear input, driven by
  the ``relay_enable`` pin, lets software drop it at once (and holds it
  cleared, ignoring edges, while inactive);
* a self-holding latch: the coil closes only while the monostable is active
  *and* either the reset button is held down or the coil is already closed
  (its own hold contact). Once the monostable lapses the coil opens and stays
  open until a person presses the button again while edges arrive. Software
  can allow re-arming (by sending edges) but can never close the relay alone.

:class:`HeartbeatRelayHardware` models exactly that; :class:`StaticRelayHardware`
models a plain driver (coil follows the pin level, no latch). Both listen to
:class:`~sim.pins.ObservedMockPin` pins and take every time from the
shared :class:`~core.clock.Clock`, never from the host, and both record each
change of the contact in :attr:`history` so a test can assert *when* the
treadmill stopped, to the simulated microsecond.

Both models take faults for tests: :meth:`~HeartbeatRelayHardware.weld_contact`
(the key-loop contact stays closed whatever the coil does: a weld, which
the relay's mirror contact shows) and :meth:`~HeartbeatRelayHardware.drop_latch` (the latch lets go
on its own: a supply dip, a knock). :class:`ContactSense` is the wire that
reads the contact back to the Pi (K1's mirror contact and its optocoupler),
with the relay's travel times and a cut to inject.

:class:`SimulatedButton` is the person's finger: it drives the button's mock
pin at clock times (see its docstring for how to keep that deterministic).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from core.clock import Clock
from sim.pins import ObservedMockPin, PinListener

log = logging.getLogger(__name__)

ContactListener = PinListener
"""Called as ``listener(t, closed)`` on every change of the modelled contact."""


class RelayHardware(Protocol):
    """What tests and the demo ask of a relay circuit model."""

    @property
    def history(self) -> list[tuple[float, bool]]:
        """Every change of the contact as ``(clock time, closed)``; the contact starts open."""
        ...

    def contact_closed(self, t: float | None = None) -> bool:
        """Whether the treadmill's safety circuit is closed at ``t`` (default: now)."""
        ...

    def opened_after(self, t: float) -> float | None:
        """Time of the first opening of the contact at or after ``t``, or None."""
        ...

    def add_contact_listener(self, listener: ContactListener) -> None:
        """Call ``listener(t, closed)`` on every future change of the contact."""
        ...

    def weld_contact(self) -> None:
        """Fault: from now on the key-loop contact stays closed, whatever the coil does."""
        ...

    def drop_latch(self) -> None:
        """Fault: the relay lets go now by itself, as if its coil lost power for a moment."""
        ...

    def detach(self) -> None:
        """Stop listening to the pins."""
        ...


def _first_open_at_or_after(history: list[tuple[float, bool]], t: float) -> float | None:
    for when, closed in history:
        if when >= t and not closed:
            return when
    return None


class HeartbeatRelayHardware:
    """The retriggerable driver plus self-holding latch, evaluated exactly.

    Semantics, with ``e`` the time of the latest edge on the relay pin that
    arrived while the timer was enabled:

    * ``driver_active(t)`` iff the enable pin is active at ``t`` and
      ``t - e < hold_s`` (half-open: an edge arriving exactly ``hold_s``
      after the previous one is too late — the latch has already opened).
      Without an enable pin the timer is always enabled. Edges while the
      timer is cleared are ignored, and enabling it is not itself a trigger:
      the driver becomes active at the first edge after enabling;
    * the latch closes when the button is down while the driver is active
      (at the press if edges are arriving, or at the first edge if the button
      is already held — holding the button bypasses the latch, as it does in
      the real circuit);
    * the latch opens at the instant the driver lapses (``e + hold_s``) or
      is cleared (the enable pin goes inactive), and stays open until the
      next press while edges arrive;
    * ``contact_closed(t)`` = latch and driver active (the latch is never
      closed with the driver inactive, so this is the latch) — or a welded
      contact (:meth:`weld_contact`), which stays closed whatever the coil does.

    Evaluation is lazy but exact: each event (pin edge or button change)
    first settles the circuit up to its own time, so a lapse is recorded at
    ``e + hold_s`` even when nobody looked at the model until much later, and
    a gap longer than ``hold_s`` opens the latch even if edges resume after
    it. Queries settle up to the time asked. Thread-safe.

    Call :meth:`attach` with the pins after the gpiozero devices exist (the
    button's pull-up is configured by its device; the model reads the
    current levels when attached).
    """

    def __init__(self, clock: Clock, hold_s: float = 0.05) -> None:
        if hold_s <= 0:
            raise ValueError("hold_s must be positive")
        self._clock = clock
        self.hold_s = hold_s
        self._lock = threading.Lock()
        self._now = clock.monotonic()
        self._last_edge: float | None = None
        self._driver = False
        self._enabled = True
        self._enable_active_high = True
        self._button_down = False
        self._button_active_low = True
        self._latch = False
        self._welded = False
        self._contact = False
        self._history: list[tuple[float, bool]] = []
        self._contact_listeners: list[ContactListener] = []
        self._edges = 0
        self._ignored_edges = 0
        self._relay_pin: ObservedMockPin | None = None
        self._button_pin: ObservedMockPin | None = None
        self._enable_pin: ObservedMockPin | None = None

    def attach(
        self,
        relay_pin: ObservedMockPin,
        button_pin: ObservedMockPin | None = None,
        *,
        enable_pin: ObservedMockPin | None = None,
        button_active_low: bool = True,
        enable_active_high: bool = True,
    ) -> HeartbeatRelayHardware:
        """Listen to the relay pin (edges), the reset button and the timer's enable pin.

        ``button_active_low`` is True for the recommended wiring: the button
        pulls a pulled-up pin to ground when pressed. Without ``enable_pin``
        the timer is never cleared by software. Returns ``self``.
        """
        self.detach()
        with self._lock:
            self._relay_pin = relay_pin
            self._button_pin = button_pin
            self._enable_pin = enable_pin
            self._button_active_low = button_active_low
            self._enable_active_high = enable_active_high
            if button_pin is not None:
                self._button_down = button_pin.level != button_active_low
            self._enabled = enable_pin is None or enable_pin.level == enable_active_high
        relay_pin.add_listener(self._on_relay_edge)
        if button_pin is not None:
            button_pin.add_listener(self._on_button_change)
        if enable_pin is not None:
            enable_pin.add_listener(self._on_enable_change)
        return self

    def detach(self) -> None:
        """Stop listening to the pins (the model keeps its state and history)."""
        if self._relay_pin is not None:
            self._relay_pin.remove_listener(self._on_relay_edge)
        if self._button_pin is not None:
            self._button_pin.remove_listener(self._on_button_change)
        if self._enable_pin is not None:
            self._enable_pin.remove_listener(self._on_enable_change)
        self._relay_pin = None
        self._button_pin = None
        self._enable_pin = None

    # -- events ---------------------------------------------------------------

    def _on_relay_edge(self, t: float, state: bool) -> None:
        with self._lock:
            t = self._settle_event_time(t)
            self._settle(t)
            self._edges += 1
            if not self._enabled:
                self._ignored_edges += 1
                return
            self._last_edge = t
            self._driver = True
            if self._button_down:
                self._set_latch(True, t)

    def _on_button_change(self, t: float, level: bool) -> None:
        with self._lock:
            t = self._settle_event_time(t)
            self._settle(t)
            self._button_down = level != self._button_active_low
            if self._button_down and self._driver:
                self._set_latch(True, t)

    def _on_enable_change(self, t: float, level: bool) -> None:
        with self._lock:
            t = self._settle_event_time(t)
            self._settle(t)
            self._enabled = level == self._enable_active_high
            if not self._enabled:
                self._driver = False
                self._last_edge = None
                self._set_latch(False, t)

    # -- evaluation ---------------------------------------------------------

    def _settle_event_time(self, t: float) -> float:
        # Events come stamped by the shared monotonic clock, so they arrive in
        # order; two threads racing between reading the clock and reporting
        # can invert two stamps by a hair. Treat the late one as "now".
        if t < self._now:
            log.debug("relay model: event at %.6f after settling to %.6f", t, self._now)
            return self._now
        return t

    def _settle(self, t: float) -> None:
        """Apply the driver's lapse if it falls at or before ``t``; caller holds the lock."""
        if self._driver and self._last_edge is not None:
            lapse = self._last_edge + self.hold_s
            if lapse <= t:
                self._driver = False
                self._set_latch(False, lapse)
        if t > self._now:
            self._now = t

    def _set_latch(self, closed: bool, t: float) -> None:
        self._latch = closed
        contact = closed or self._welded
        if self._contact != contact:
            self._contact = contact
            self._history.append((t, contact))
            for listener in tuple(self._contact_listeners):
                listener(t, contact)

    def _state_at(self, t: float | None) -> tuple[bool, bool]:
        """(driver active, latch closed) at ``t``; caller holds the lock.

        Settles up to the clock's now at most: a question about the future
        ("if no edge came, would it still be closed at t?") is answered
        without committing, so a later event stamped before ``t`` is still
        processed in order.
        """
        now = max(self._clock.monotonic(), self._now)
        if t is None:
            t = now
        elif t < self._now:
            raise ValueError(
                f"cannot evaluate the circuit at {t:.6f}: already settled to {self._now:.6f}"
                " (read 'history' for the past)"
            )
        self._settle(min(t, now))
        driver = self._driver
        if driver and self._last_edge is not None and self._last_edge + self.hold_s <= t:
            driver = False
        return driver, self._latch and driver

    # -- queries --------------------------------------------------------------

    def driver_active(self, t: float | None = None) -> bool:
        """Whether the monostable is holding at ``t`` (default: the clock's now)."""
        with self._lock:
            return self._state_at(t)[0]

    def latched(self, t: float | None = None) -> bool:
        """Whether the self-holding latch is closed at ``t``."""
        with self._lock:
            return self._state_at(t)[1]

    def contact_closed(self, t: float | None = None) -> bool:
        """Whether the treadmill may run at ``t``: latch closed and driver active (or welded).

        ``t`` defaults to the clock's now; a ``t`` in the future answers
        "if no further event arrives". The past is in :attr:`history`.
        """
        with self._lock:
            return self._state_at(t)[1] or self._welded

    # -- faults ---------------------------------------------------------------

    def weld_contact(self) -> None:
        """From now on the key-loop contact stays closed, whatever the coil does.

        Welded while closed, it simply never opens again; called while open
        the contact closes now and sticks (an armature jammed shut). The sense
        follows, as the real mirror contact does for a weld; a wire bridging
        the contact in the loop itself would not show on the real mirror, and
        is not what this models.
        """
        with self._lock:
            now = max(self._clock.monotonic(), self._now)
            self._settle(now)
            self._welded = True
            self._set_latch(self._latch, now)

    def drop_latch(self) -> None:
        """The latch lets go now by itself (a supply dip, a knock): open until the next press.

        The edges keep the driver active; only a press of reset closes it again.
        """
        with self._lock:
            now = max(self._clock.monotonic(), self._now)
            self._settle(now)
            self._set_latch(False, now)

    def add_contact_listener(self, listener: ContactListener) -> None:
        """Call ``listener(t, closed)`` on every future change of the contact.

        ``t`` is when the change happened, which may be earlier than the
        clock's now (a lapse is settled when somebody next looks). Runs with
        the model's lock held: it must not call back into the model.
        """
        with self._lock:
            self._contact_listeners.append(listener)

    @property
    def button_down(self) -> bool:
        """Whether the model currently sees the reset button held down."""
        return self._button_down

    @property
    def edge_count(self) -> int:
        """Edges received on the relay pin since attaching (including ignored ones)."""
        return self._edges

    @property
    def ignored_edges(self) -> int:
        """Edges that arrived while the timer was held cleared."""
        return self._ignored_edges

    @property
    def enabled(self) -> bool:
        """Whether the timer's clear input is released (always True without an enable pin)."""
        return self._enabled

    @property
    def history(self) -> list[tuple[float, bool]]:
        """Every contact change ``(time, closed)``, settled up to the clock's now."""
        with self._lock:
            self._settle(max(self._clock.monotonic(), self._now))
            return list(self._history)

    def opened_after(self, t: float) -> float | None:
        """When the contact first opened at or after ``t`` (settled to now), or None."""
        return _first_open_at_or_after(self.history, t)


class StaticRelayHardware:
    """A plain relay driver: the coil follows the pin's level, no latch, no timeout.

    This is the wiring without the heartbeat circuit: a hung loop with the
    pin left active keeps the treadmill running, which is why heartbeat is
    the recommended drive. The reset button plays no part in the circuit.
    """

    def __init__(self, clock: Clock, *, active_high: bool = True) -> None:
        self._clock = clock
        self.active_high = active_high
        self._lock = threading.Lock()
        self._coil = False
        self._dropped = False
        self._welded = False
        self._closed = False
        self._history: list[tuple[float, bool]] = []
        self._contact_listeners: list[ContactListener] = []
        self._relay_pin: ObservedMockPin | None = None

    def attach(self, relay_pin: ObservedMockPin) -> StaticRelayHardware:
        """Follow ``relay_pin``'s level from now on. Returns ``self``."""
        self.detach()
        self._relay_pin = relay_pin
        with self._lock:
            self._set_coil(relay_pin.level == self.active_high, self._clock.monotonic())
        relay_pin.add_listener(self._on_relay_change)
        return self

    def detach(self) -> None:
        """Stop following the pin."""
        if self._relay_pin is not None:
            self._relay_pin.remove_listener(self._on_relay_change)
        self._relay_pin = None

    def _on_relay_change(self, t: float, level: bool) -> None:
        with self._lock:
            self._set_coil(level == self.active_high, t)

    def _set_coil(self, energised: bool, t: float) -> None:
        if not energised:
            self._dropped = False  # a dropped coil closes again on the next activation
        self._coil = energised
        self._update(t)

    def _update(self, t: float) -> None:
        closed = self._welded or (self._coil and not self._dropped)
        if closed != self._closed:
            self._closed = closed
            self._history.append((t, closed))
            for listener in tuple(self._contact_listeners):
                listener(t, closed)

    def contact_closed(self, t: float | None = None) -> bool:
        """Whether the contact is closed (``t`` is accepted for interface parity)."""
        with self._lock:
            return self._closed

    def weld_contact(self) -> None:
        """From now on the contact stays closed, whatever the pin does (closes it if open)."""
        with self._lock:
            self._welded = True
            self._update(self._clock.monotonic())

    def drop_latch(self) -> None:
        """The coil lets go now, and stays released until the pin is next activated."""
        with self._lock:
            self._dropped = True
            self._update(self._clock.monotonic())

    def add_contact_listener(self, listener: ContactListener) -> None:
        """Call ``listener(t, closed)`` on every future change (with the model's lock held)."""
        with self._lock:
            self._contact_listeners.append(listener)

    @property
    def history(self) -> list[tuple[float, bool]]:
        """Every contact change ``(time, closed)``; the contact starts open."""
        with self._lock:
            return list(self._history)

    def opened_after(self, t: float) -> float | None:
        """When the contact first opened at or after ``t``, or None."""
        return _first_open_at_or_after(self.history, t)


class ContactSense:
    """The relay's contact as the Pi reads it back: K1's mirror contact and its optocoupler.

    Drives the sense pin (an input; its device configured the pull-up) from
    a relay model's contact: **high while the contact is closed, low while
    it is open** — the recommended wiring of ``wiring/README.md``, section 6,
    where the mirror contact lights an optocoupler that pulls the pin low
    while the relay is released.

    ``operate_s`` and ``release_s`` are the armature's travel as the mirror
    contact shows it: the pin follows a closing ``operate_s`` after the
    coil's instant, an opening ``release_s`` after (a change undone before it
    is due never shows). The model's :attr:`~RelayHardware.history` keeps the
    coil's instants, which is what the release-time bounds of the safety
    tests are about; these delays let the firmware's debounce meet a relay
    that is not instantaneous. Both default to 0.

    :meth:`cut` is the fault: the wire, the optocoupler or a connector is
    open, the pull-up wins, and the pin reads high ("closed") whatever the
    relay does — until :meth:`mend`.

    Lazy like the models: gpiozero's read of the pin first settles the model
    up to the clock's now (a lapse is found then) and applies every change
    that has become due, so a read sees the circuit at that instant.
    """

    def __init__(
        self,
        clock: Clock,
        hardware: RelayHardware,
        *,
        operate_s: float = 0.0,
        release_s: float = 0.0,
    ) -> None:
        if operate_s < 0 or release_s < 0:
            raise ValueError("operate_s and release_s must not be negative")
        self._clock = clock
        self._hardware = hardware
        self.operate_s = operate_s
        self.release_s = release_s
        self._lock = threading.Lock()
        self._pending: list[tuple[float, bool]] = []
        self._mirror_closed = hardware.contact_closed()
        self._cut = False
        self._pin: ObservedMockPin | None = None
        hardware.add_contact_listener(self._on_contact)

    def attach(self, pin: ObservedMockPin) -> ContactSense:
        """Drive ``pin`` from now on (after its input device exists). Returns ``self``."""
        self.detach()
        self._pin = pin
        pin.set_read_hook(self.refresh)
        with self._lock:
            self._drive()
        return self

    def detach(self) -> None:
        """Stop driving the pin (it keeps its last level)."""
        if self._pin is not None:
            self._pin.set_read_hook(None)
        self._pin = None

    def _on_contact(self, t: float, closed: bool) -> None:
        # The model's lock is held: only record, and apply what is already due.
        due = t + (self.operate_s if closed else self.release_s)
        with self._lock:
            # A change due no later than the ones pending supersedes them (an
            # armature that turns back before it arrives never gets there).
            self._pending = [p for p in self._pending if p[0] < due]
            self._pending.append((due, closed))
            self._apply_due(t)

    def _apply_due(self, now: float) -> None:
        while self._pending and self._pending[0][0] <= now:
            _, self._mirror_closed = self._pending.pop(0)
        self._drive()

    def _drive(self) -> None:
        pin = self._pin
        if pin is None:
            return
        if self._cut or self._mirror_closed:
            pin.drive_high()
        else:
            pin.drive_low()

    def refresh(self) -> None:
        """Bring the pin up to the clock's now (the pin's read hook)."""
        self._hardware.contact_closed()  # settles the model: a lapse reaches _on_contact
        with self._lock:
            self._apply_due(self._clock.monotonic())

    @property
    def reads_closed(self) -> bool:
        """What the Pi reads now: True for "contact closed" (high)."""
        self.refresh()
        return self._pin.level if self._pin is not None else self._cut or self._mirror_closed

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Fault: the sense wire is cut; the pull-up makes the pin read "closed"."""
        with self._lock:
            self._cut = True
            self._drive()

    def mend(self) -> None:
        """The wire is whole again: the pin follows the contact."""
        self.refresh()
        with self._lock:
            self._cut = False
            self._drive()


class SimulatedButton:
    """A finger on the reset button: drives the button's mock pin at clock times.

    Three ways to press, all deterministic:

    * :meth:`down` / :meth:`up` act at the clock's current time — a test
      that steps a :class:`~core.clock.SimClock` itself places every edge
      exactly (this is how chatter is simulated: down, advance 2 ms, up, ...);
    * :meth:`press` is down, ``clock.sleep(duration)``, up. On a SimClock the
      sleep advances simulated time, so only the thread that owns the clock
      may call it; on a RealClock it blocks for the duration;
    * :meth:`press_at` schedules a press and :meth:`poll` applies whatever is
      due. The loop that steps the simulation calls :meth:`poll` once per
      step; an edge takes effect at the time of the poll that finds it due,
      so its resolution is the step, never the host's scheduling.

    Mind the latch: it closes only if relay edges arrive *while* the button
    is down. A single-threaded ``press()`` on a SimClock jumps over the whole
    press before the loop can answer it with edges, so it never closes the
    latch; to arm in a simulation use :meth:`press_at` with :meth:`poll`
    inside the stepping loop, or :meth:`down`, run the loop, :meth:`up`.
    """

    def __init__(self, pin: ObservedMockPin, clock: Clock, *, active_low: bool = True) -> None:
        self.pin = pin
        self._clock = clock
        self.active_low = active_low
        self._lock = threading.Lock()
        self._scheduled: list[tuple[float, bool]] = []

    @property
    def is_down(self) -> bool:
        """Whether the pin is at the pressed level."""
        return self.pin.level != self.active_low

    def _drive(self, down: bool) -> None:
        if down != self.active_low:
            self.pin.drive_high()
        else:
            self.pin.drive_low()

    def down(self) -> None:
        """Press the button now."""
        self._drive(True)

    def up(self) -> None:
        """Let go of the button now."""
        self._drive(False)

    def press(self, duration: float = 0.1) -> None:
        """Press, hold for ``duration`` of clock time, let go."""
        self.down()
        self._clock.sleep(duration)
        self.up()

    def press_at(self, t_down: float, t_up: float) -> None:
        """Schedule a press from ``t_down`` to ``t_up`` (clock times) for :meth:`poll`."""
        if t_up <= t_down:
            raise ValueError("t_up must be after t_down")
        with self._lock:
            self._scheduled.extend([(t_down, True), (t_up, False)])
            self._scheduled.sort(key=lambda item: item[0])

    @property
    def pending(self) -> int:
        """Scheduled edges not yet applied."""
        with self._lock:
            return len(self._scheduled)

    def poll(self) -> int:
        """Apply every scheduled edge due at the clock's now, in order; return how many."""
        now = self._clock.monotonic()
        with self._lock:
            due = [item for item in self._scheduled if item[0] <= now]
            self._scheduled = [item for item in self._scheduled if item[0] > now]
        for _, down in due:
            self._drive(down)
        return len(due)
