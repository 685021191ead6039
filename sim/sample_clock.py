"""The simulated MPU-6050's own sample clock: samples, and INT, on time by themselves.

The chip model is lazy: it makes the samples due whenever the bus touches
it, which is all a polling driver can tell apart. A loop paced by the INT
pin waits for the chip instead, so once INT is wired the chip must act at
its own instants:

* on a :class:`core.clock.SimClock`, one timer per interrupt
  (:meth:`~core.clock.SimClock.call_at`): single-threaded and deterministic,
  and a loop waiting on the clock (:meth:`~core.clock.SimClock.wait`) is
  woken at exactly the sample's instant;
* on any other clock (the real one, the demo's scaled one), a daemon thread
  that sleeps until the next interrupt. It plays the silicon, which costs a
  Pi nothing, so it keeps its own CPU time (:attr:`ThreadSampleClock.sampling_cpu_s`)
  for benchmarks to subtract. Moving the INT pin, and gpiozero's dispatch of
  the edge to the firmware's callback, is timed apart
  (:attr:`ThreadSampleClock.edge_cpu_s`): on a Pi the monitor pays for that.
  The chip's look at its next interrupt once the pin has moved (the
  :meth:`~ThreadSampleClock.reschedule` it calls back on this thread) is the
  chip's own clock, so it counts as sampling, not as the edge.
"""

from __future__ import annotations

import threading
import time
from typing import Final, Protocol

from core.clock import Clock, SimClock
from core.realtime import SchedulingPolicy

IDLE_WAIT_S: Final = 0.05
"""How long the thread sleeps when no interrupt is due (a change wakes it sooner)."""


class SelfClockedChip(Protocol):
    """What a sample clock drives."""

    def next_interrupt_at(self) -> float | None:
        """When the chip next raises an interrupt by itself; None when none is due."""
        ...

    def make_due_samples(self) -> None:
        """Make every sample due by the clock's now (INT moves are held back)."""
        ...

    def update_int_pin(self) -> None:
        """Put the held-back INT moves on the pin, then reschedule."""
        ...


class SampleClock(Protocol):
    def reschedule(self) -> None:
        """The chip changed (a register, the FIFO level): look at its next interrupt again."""
        ...

    def stop(self) -> None: ...


def sample_clock_for(clock: Clock, chip: SelfClockedChip) -> SampleClock:
    """Timers on a SimClock, a thread on any other clock."""
    if isinstance(clock, SimClock):
        return TimerSampleClock(clock, chip)
    return ThreadSampleClock(clock, chip)


class TimerSampleClock:
    """Interrupts as SimClock timers: the chip's next one is always scheduled.

    Called with the chip's lock held. A change that brings the next
    interrupt earlier schedules a new timer and retires the old one; a later
    one is found by the pending timer when it fires.
    """

    def __init__(self, clock: SimClock, chip: SelfClockedChip) -> None:
        self._clock = clock
        self._chip = chip
        self._scheduled: float | None = None
        self._generation = 0
        self._stopped = False

    def reschedule(self) -> None:
        if self._stopped:
            return
        due = self._chip.next_interrupt_at()
        if due is None or (self._scheduled is not None and self._scheduled <= due):
            return
        self._generation += 1
        generation = self._generation
        self._scheduled = due
        self._clock.call_at(due, lambda: self._fire(generation))

    def _fire(self, generation: int) -> None:
        if generation != self._generation or self._stopped:
            return
        self._scheduled = None
        self._chip.make_due_samples()
        self._chip.update_int_pin()

    def stop(self) -> None:
        self._stopped = True
        self._generation += 1


class ThreadSampleClock:
    """Interrupts on a thread that sleeps on the clock until each one is due."""

    def __init__(self, clock: Clock, chip: SelfClockedChip) -> None:
        self._clock = clock
        self._chip = chip
        self._wake = threading.Event()
        self._target: float | None = None
        self._stopped = False
        self.sampling_cpu_s = 0.0
        """Thread CPU time spent making samples: the silicon's work."""
        self.edge_cpu_s = 0.0
        """Thread CPU time spent moving INT and in the callbacks its edges run."""
        self._ticking: int | None = None
        """This thread's id while it moves INT (its reschedule call-back is timed apart)."""
        self._rescheduling_cpu_s = 0.0
        self.ticks = 0
        self._policy = SchedulingPolicy.of_this_thread()
        self._thread = threading.Thread(target=self._run, name="sim-mpu6050-clock", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        """The thread's id in the OS (benchmarks read its CPU time from /proc)."""
        return self._thread.native_id

    def reschedule(self) -> None:
        if self._ticking is not None and threading.get_ident() == self._ticking:
            started = time.thread_time()
            self._reschedule()
            self._rescheduling_cpu_s += time.thread_time() - started
        else:
            self._reschedule()

    def _reschedule(self) -> None:
        due = self._chip.next_interrupt_at()
        target = self._target
        if due is not None and (target is None or due < target):
            self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _run(self) -> None:
        # Silicon is never descheduled: the thread plays it at the priority of the thread that
        # wired the chip (the monitor's), or it would hold the GIL the loop needs while a busy
        # host preempts it (see core.realtime).
        if self._policy is not None:
            self._policy.apply("the simulated MPU-6050's sample clock")
        clock = self._clock
        chip = self._chip
        while not self._stopped:
            self._wake.clear()  # before looking, so a change made from here on wakes the wait
            due = chip.next_interrupt_at()
            self._target = due
            if due is None:
                clock.wait(self._wake, IDLE_WAIT_S)
                continue
            now = clock.monotonic()
            if due > now and clock.wait(self._wake, due - now):
                continue  # something changed: look again
            if self._stopped:
                return
            started = time.thread_time()
            chip.make_due_samples()
            sampled = time.thread_time()
            self._ticking, self._rescheduling_cpu_s = threading.get_ident(), 0.0
            chip.update_int_pin()
            moved = time.thread_time()
            self._ticking = None
            rescheduling = self._rescheduling_cpu_s
            self.sampling_cpu_s += sampled - started + rescheduling
            self.edge_cpu_s += moved - sampled - rescheduling
            self.ticks += 1
