"""The measurement thread: gait and balance computed beside the real-time loop, never on it.

Why a thread in the monitor process, and not the courier process
    The samples are already here, as the loop read them. Handing them to
    the courier would mean shipping ~1.7 MB per 10-minute interval through
    the link the alerts use and completing the session record in another
    process than the one that builds it. The costs of a thread are the GIL
    and the CPU, and both are bounded:

    * the loop's cost is one ``list.extend`` of references per iteration
      (:meth:`Measurements.feed`) and, once a second, one queue put of a
      block; it never waits for the thread (all queues are non-blocking
      puts and gets);
    * the thread works in blocks of one second of data (about 4 ms of CPU
      here, an estimated 25 ms on a Pi Zero 2 W: ``benchmarks/gait.py``) and
      then sleeps as long as it worked, so it takes at most half of one core
      and releases the GIL at least half of the time; while it computes, the 1 ms GIL switch
      interval the monitor sets (:func:`firmware.app.favour_realtime_thread`)
      bounds how long the loop can wait for the GIL;
    * it keeps the scheduling policy it inherits (SCHED_FIFO under the
      systemd unit): a thread at a lower priority could be preempted while
      holding the GIL, and the loop would wait on it;
    * at most ``max_backlog_s`` seconds of samples wait for it; beyond that
      a block is dropped and counted (``dropped_s`` in the figures), so a
      slow thread costs accuracy, never memory or the loop's time.

Jobs
    The runner says what the coming samples are: a balance check
    (:class:`BalanceJob`) or a walking interval (:class:`GaitJob`), then
    feeds samples, then ends the job; the thread answers with a
    :class:`BalanceResult` or :class:`GaitResult` that the runner collects
    with :meth:`Measurements.take` on its next iteration. A bug in a meter is
    logged and gives no figures; it never stops the thread or the loop.

    With an unknown mounting, AP and ML are learned from each session's
    walking (:class:`~firmware.gait.frame.AxisLearner`); a balance check made
    before they were known is answered at once with the figures that need no
    axes, and again, with AP and ML, once the walking has taught them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.mounting import Mounting
from core.protocol.messages import AxesSource, BalanceCondition, BalanceFigures, GaitFigures
from core.realtime import LoopHelperThread
from core.samples import ImuSample
from firmware.gait.balance import BalanceMeter, SwaySignal
from firmware.gait.figures import balance_figures, gait_figures
from firmware.gait.frame import AxisLearner
from firmware.gait.stream import Decimator
from firmware.gait.walking import GaitMeter

log = logging.getLogger(__name__)

BLOCK_S = 1.0
"""Seconds of samples per hand-over to the thread."""
MAX_BACKLOG_S = 60.0
"""Seconds of samples that may wait for the thread; more are dropped (and counted)."""
MAX_PAUSE_S = 0.05
"""The thread sleeps as long as it worked, up to this."""


@dataclass(frozen=True, slots=True)
class BalanceJob:
    session: str
    index: int
    """0 for the first check of the session (eyes open), 1 for the second (eyes closed)."""
    condition: BalanceCondition
    settle_s: float
    """Seconds at the start that only find gravity (the walker settles after the cue)."""


@dataclass(frozen=True, slots=True)
class GaitJob:
    session: str
    interval: int


Job = BalanceJob | GaitJob


@dataclass(frozen=True, slots=True)
class BalanceResult:
    session: str
    index: int
    figures: BalanceFigures


@dataclass(frozen=True, slots=True)
class GaitResult:
    session: str
    interval: int
    figures: GaitFigures | None
    """None when the meter failed (logged)."""


Result = BalanceResult | GaitResult


@dataclass(frozen=True, slots=True)
class _Begin:
    job: Job


@dataclass(frozen=True, slots=True)
class _Samples:
    block: list[ImuSample]


@dataclass(frozen=True, slots=True)
class _End:
    dropped_s: float
    discard: bool


@dataclass(frozen=True, slots=True)
class _NewSession:
    session: str


_Message = _Begin | _Samples | _End | _NewSession


class Measurements:
    """The loop's side of the measurement thread. Every method but :meth:`wait_idle` and
    :meth:`close` runs on the loop thread and never blocks."""

    def __init__(
        self,
        sample_rate_hz: float,
        mounting: Mounting,
        *,
        bandwidth_hz: float | None = None,
        max_backlog_s: float = MAX_BACKLOG_S,
        block_s: float = BLOCK_S,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.mounting = mounting
        self.bandwidth_hz = bandwidth_hz
        self._block_n = max(1, int(block_s * sample_rate_hz))
        self._max_backlog = int(max_backlog_s * sample_rate_hz)
        self._in: queue.SimpleQueue[_Message | None] = queue.SimpleQueue()
        self._out: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self.answers = self._out
        """The results not yet taken (the loop only asks whether it is empty; :meth:`take`
        takes them)."""
        self._block: list[ImuSample] = []
        self._job: Job | None = None
        self._dropped = 0
        self._queued = 0
        """Samples handed over (written by the loop)."""
        self._done = 0
        """Samples processed (written by the thread)."""
        self._sent = 0
        """Messages put (the loop's count)."""
        self._handled = 0
        """Messages handled (the thread's count, under ``_cond``)."""
        self._cond = threading.Condition()
        self.dropped_total_s = 0.0
        self.failures = 0
        self._thread = LoopHelperThread(self._run, "retroguard-gait")
        self._thread.start()

    # ------------------------------------------------------------- loop

    @property
    def job(self) -> Job | None:
        return self._job

    def new_session(self, session: str) -> None:
        """A session starts: what was learned about the axes belongs to the last one."""
        self._put(_NewSession(session))

    def begin(self, job: Job) -> None:
        if self._job is not None:
            self.end()
        self._job = job
        self._dropped = 0
        self._put(_Begin(job))

    def feed(self, samples: Sequence[ImuSample]) -> None:
        if self._job is None or not samples:
            return
        block = self._block
        block.extend(samples)
        if len(block) >= self._block_n:
            self._hand_over()

    def end(self, *, discard: bool = False) -> None:
        """The job's samples are all in; ``discard``: no result wanted (an interrupted check)."""
        if self._job is None:
            return
        self._hand_over()
        dropped_s = self._dropped / self.sample_rate_hz
        self.dropped_total_s += dropped_s
        self._put(_End(dropped_s, discard))
        self._job = None

    def take(self) -> list[Result]:
        results: list[Result] = []
        out = self._out
        # Asked first: an empty get_nowait() raises, which costs every loop iteration several
        # times the question. This thread alone takes from the queue, so it stays non-empty.
        while not out.empty():
            results.append(out.get_nowait())
        return results

    @property
    def busy(self) -> bool:
        """Work handed over and not yet answered."""
        return self._handled != self._sent

    def _hand_over(self) -> None:
        block = self._block
        if not block:
            return
        self._block = []
        if self._queued - self._done + len(block) > self._max_backlog:
            self._dropped += len(block)
            return
        self._queued += len(block)
        self._put(_Samples(block))

    def _put(self, message: _Message) -> None:
        self._sent += 1
        self._in.put_nowait(message)

    # -------------------------------------------------- other threads

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything handed over is answered; False on timeout. Not on the loop."""
        sent = self._sent
        with self._cond:
            return self._cond.wait_for(lambda: self._handled >= sent, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._in.put_nowait(None)
        self._thread.join(timeout)

    # ----------------------------------------------------- the thread

    def _run(self) -> None:
        state = _WorkerState(self)
        while True:
            message = self._in.get()
            if message is None:
                return
            started = time.process_time()
            try:
                state.handle(message)
            except Exception:
                self.failures += 1
                log.exception("gait measurement failed; this job gives no figures")
                state.fail()
            finally:
                if isinstance(message, _Samples):
                    self._done += len(message.block)
                with self._cond:
                    self._handled += 1
                    self._cond.notify_all()
            worked = time.process_time() - started
            if worked > 0.002:
                time.sleep(min(worked, MAX_PAUSE_S))


class _WorkerState:
    """Everything the thread holds between messages (touched by the thread only)."""

    def __init__(self, owner: Measurements) -> None:
        self._owner = owner
        self._session = ""
        self._learner = AxisLearner()
        self._job: Job | None = None
        self._decimator: Decimator | None = None
        self._balance: BalanceMeter | None = None
        self._gait: GaitMeter | None = None
        self._unlabelled: dict[int, tuple[BalanceCondition, SwaySignal]] = {}

    def handle(self, message: _Message) -> None:
        match message:
            case _NewSession(session=session):
                self._session = session
                self._learner = AxisLearner()
                self._unlabelled.clear()
            case _Begin(job=job):
                self._start(job)
            case _Samples(block=block):
                self._feed(block)
            case _End(dropped_s=dropped_s, discard=discard):
                self._finish(dropped_s, discard)

    def _start(self, job: Job) -> None:
        owner = self._owner
        self._job = job
        decimator = Decimator(owner.sample_rate_hz)
        self._decimator = decimator
        self._balance = self._gait = None
        if isinstance(job, BalanceJob):
            self._balance = BalanceMeter(
                decimator.rate_hz,
                owner.mounting,
                settle_s=job.settle_s,
                bandwidth_hz=owner.bandwidth_hz,
                averaged=decimator.k,
            )
        else:
            self._gait = GaitMeter(decimator.rate_hz, owner.mounting, self._learner)

    def _feed(self, block: list[ImuSample]) -> None:
        decimator = self._decimator
        if decimator is None:
            return
        balance, gait = self._balance, self._gait
        for a in decimator.feed(block):
            if a is None:
                if gait is not None:
                    gait.gap()
            elif gait is not None:
                gait.add(*a)
            elif balance is not None:
                balance.add(a[0], a[1], a[2], a[3])

    def _finish(self, dropped_s: float, discard: bool) -> None:
        job, balance, gait = self._job, self._balance, self._gait
        self._job = self._decimator = self._balance = self._gait = None
        if job is None or discard:
            return
        out = self._owner._out
        if isinstance(job, BalanceJob) and balance is not None:
            signal = balance.signal()
            if len(signal.a1) < 3:
                return
            angle, axes = self._axes(signal.knows_ap)
            out.put_nowait(
                BalanceResult(
                    job.session,
                    job.index,
                    balance_figures(job.condition, signal.metrics(angle), axes),
                )
            )
            if axes == "unknown":
                self._unlabelled[job.index] = (job.condition, signal)
        elif isinstance(job, GaitJob) and gait is not None:
            out.put_nowait(
                GaitResult(job.session, job.interval, gait_figures(gait.finish(), dropped_s))
            )
            self._label_balance()

    def _axes(self, knows_ap: bool) -> tuple[float | None, AxesSource]:
        if knows_ap:
            return 0.0, "mounting"
        angle = self._learner.ap_angle()
        return angle, "learned" if angle is not None else "unknown"

    def _label_balance(self) -> None:
        """The walking has taught AP and ML: answer the checks made before, with them."""
        angle = self._learner.ap_angle()
        if angle is None or not self._unlabelled:
            return
        for index, (condition, signal) in sorted(self._unlabelled.items()):
            figures = balance_figures(condition, signal.metrics(angle), "learned")
            self._owner._out.put_nowait(BalanceResult(self._session, index, figures))
        self._unlabelled.clear()

    def fail(self) -> None:
        """A meter raised: answer the job with nothing and forget it."""
        job = self._job
        self._job = self._decimator = self._balance = self._gait = None
        if isinstance(job, GaitJob):
            self._owner._out.put_nowait(GaitResult(job.session, job.interval, None))
