"""Giving the loop's helper threads the loop's own scheduling policy.

systemd runs the monitor ``SCHED_FIFO`` with ``CPUSchedulingResetOnFork``,
and on Linux that flag resets every new *thread* too, not only forked
processes: a thread the monitor starts (lgpio's callback thread, the
simulated chip's sample clock) runs ``SCHED_OTHER``. A helper that wakes
the loop at normal priority is worse than late: while it holds the GIL, a
busy Pi can preempt it, and the real-time loop then waits behind it
(priority inversion; measured here as 50 ms loop stalls under load, more
than the relay's hold time). Such a helper adopts the policy of the thread
that created it, from its own thread, with :meth:`SchedulingPolicy.apply`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulingPolicy:
    """A Linux scheduling policy and its static priority."""

    policy: int
    priority: int

    @classmethod
    def of_this_thread(cls) -> SchedulingPolicy | None:
        """The calling thread's policy; None where the OS cannot say (not Linux)."""
        try:
            policy = (
                os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
            )  # the flag comes back ORed in
            return cls(policy, os.sched_getparam(0).sched_priority)
        except (AttributeError, OSError):
            return None

    def below(self) -> SchedulingPolicy:
        """The same policy one priority step lower (never below the lowest real-time one):
        a helper that never takes the CPU from the loop, nor lets the rest of the machine
        preempt it while it holds the GIL."""
        if not self.realtime:
            return self
        return SchedulingPolicy(self.policy, max(1, self.priority - 1))

    @property
    def realtime(self) -> bool:
        return self.policy in (os.SCHED_FIFO, os.SCHED_RR)

    def apply(self, what: str, *, refused: int = logging.WARNING) -> bool:
        """Give the *calling thread* this policy (reset on fork, as the unit's); True if it
        now has it. Nothing to do for a normal policy; a refusal is logged (at ``refused``),
        never raised."""
        if not self.realtime:
            return False
        try:
            os.sched_setscheduler(
                0, self.policy | os.SCHED_RESET_ON_FORK, os.sched_param(self.priority)
            )
        except (AttributeError, OSError) as exc:
            log.log(refused, "%s stays at normal priority: %s", what, exc)
            return False
        return True


class LoopHelperThread(threading.Thread):
    """A daemon thread of the monitor process, run one priority step below its creator.

    Every Python thread in the loop's process can hold the GIL the loop needs; at
    normal priority, a busy machine may preempt it mid-bytecode and the loop waits
    behind it (the supervisor restarting the courier, the gait meter, the session
    socket). Created from the loop's thread, it adopts that thread's real-time policy
    one step lower; under a normal policy (tests, a bench without the unit) it is a
    plain thread.

    ``beside``: the policy of the loop it runs beside, for a thread that must be made
    before the loop's real-time section (:func:`realtime_section`) and outlive it (the
    demo's stderr relay: its children write there from before the loop starts until after
    it ends); it runs one step below that policy from its start. A refusal is logged at
    DEBUG only: the loop's own section has said so as a warning.
    """

    def __init__(
        self,
        target: Callable[[], object],
        name: str,
        *,
        beside: SchedulingPolicy | None = None,
    ) -> None:
        super().__init__(target=target, name=name, daemon=True)
        self._given = beside is not None
        self._policy = beside if beside is not None else SchedulingPolicy.of_this_thread()

    def run(self) -> None:
        if self._policy is not None:
            self._policy.below().apply(
                self.name, refused=logging.DEBUG if self._given else logging.WARNING
            )
        super().run()


@contextlib.contextmanager
def realtime_section(priority: int, what: str) -> Iterator[bool]:
    """Run the calling thread ``SCHED_FIFO`` at ``priority`` (reset on fork) inside the block,
    as the systemd unit runs the monitor; yields whether the OS allowed it.

    For a loop started outside the unit (``retroguard demo``): a shared, busy machine then
    cannot stall it past the relay's hold time. The thread's policy before is restored
    after the block, so a caller that goes on (a test process) is not left real-time.
    """
    before = SchedulingPolicy.of_this_thread()
    applied = SchedulingPolicy(os.SCHED_FIFO, priority).apply(what)
    try:
        yield applied
    finally:
        if applied and before is not None:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, before.policy, os.sched_param(before.priority))
