"""The monitor loop's end of the link to the courier process: non-blocking, bounded, lossless.

Everything here runs on the real-time thread (:meth:`CourierLink.poll` is an
``on_iteration`` hook) except :meth:`CourierLink.attach`, which the
supervisor thread calls with a freshly started courier's socket: it only
swaps one reference, and the loop picks the new socket up at its next poll.

What the loop hands over (events, state changes, health, session records)
is encoded on the spot and queued as frames; each poll sends what the
kernel takes without waiting and reads a bounded number of the courier's
messages. An event or a final session record stays *pending* until the
courier answers that it is on disk (:class:`~firmware.link.messages.Persisted`):
if the courier dies, its successor gets every pending record again, so a
crash of the storage-and-network side loses nothing the loop produced.
The pending set is bounded; over the bound informational events go first,
alerts and faults never.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from core.protocol.events import PROTECTED_TYPES, Event
from core.protocol.messages import (
    DeviceHealth,
    FaultSaid,
    SessionRecord,
    SilenceResult,
    WornSaid,
)
from core.protocol.plan import Plan
from firmware.link import messages
from firmware.link.framing import FrameError, FrameReader, FrameWriter

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 32 * 1024 * 1024
"""Unpersisted records kept in memory; beyond it the oldest informational events go."""
MAX_MESSAGES_PER_POLL = 64
"""Messages from the courier handled in one loop iteration: a flood costs a bounded slice."""
READ_CHUNK = 65536
SEND_BUDGET = 256 * 1024
"""Bytes handed to the kernel per iteration at most."""
STARTUP_GRACE_S = 15.0
"""How long after start-up the loop may run without a word from the courier."""
COURIER_SILENT_S = 10.0
"""A courier silent this long is presumed hung (the supervisor replaces it)."""
UNCONFIRMED_RESEND_S = 30.0
"""A record the courier has not confirmed on disk this long (real time) while it says its
storage works is handed to it again: its store failed for a reason that is not the disk's
(``SQLITE_NOMEM``, a constraint, a bug: logged there, no storage fault) and nothing else would
ever send it again before a new courier or the end of the run. The courier stores by id, so
a repeat costs a lookup."""
RESEND_PER_POLL = 16
"""Unconfirmed records handed over again in one loop iteration at most."""
SILENCE_ANSWER_KEEP_S = 60.0
"""How long (real time) the loop keeps its answer to a caregiver's silence for a courier that
replaces the one it was meant for: the reply is the silence command's, and a caller waiting
longer than this has given up on it."""
SILENCE_ANSWERS_KEPT = 16
"""Answers kept at most (the command budget lets a few silences through a second)."""
COURIER_START_SILENT_S = 60.0
"""How long a new courier may take to say its first word before it is presumed hung: it
starts a Python process, opens (perhaps upgrades) the database and connects, niced below
everything else. On a busy host that took over 10 s, and each new courier was killed for
it before it could speak, again and again (the loop meanwhile refuses arming, as without
any courier)."""


@dataclass(slots=True)
class _Pending:
    payload: bytes
    protected: bool
    sent_at: float
    """Real time it was last handed to a courier (the oldest first in the pending dict)."""


class CourierLink:
    """The loop-side endpoint. Not thread-safe except :meth:`attach` (see module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        real_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._real = real_clock
        self._max_pending = max_pending_bytes
        self._sock: socket.socket | None = None
        self._incoming_sock: socket.socket | None = None
        self._readable: select.poll | None = None
        """Tells whether the courier sent anything, without a recv() (see :meth:`_receive`)."""
        self._writer = FrameWriter()
        self._reader = FrameReader()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._pending_bytes = 0
        self._hello: bytes | None = None
        self._last_state: bytes | None = None
        self._last_session: bytes | None = None
        """The unfinished session's last record, as handed over (None: no session under way):
        a courier that replaces one mid-session learns whose session it is from it."""
        self.started_at = clock()
        self.last_heard: float | None = None
        """Monotonic time of the courier's last message (None: never heard)."""
        self.storage_ok: bool | None = None
        """The courier's last word on storage; None until it has spoken."""
        self.storage_detail = "waiting for the courier"
        self.broker_connected = False
        self.outbox_depth = 0
        self.caregivers_away = False
        """The courier's last word: a caregiver service is expected and not online (read by
        the session runner at arming, one attribute; never by the safety controller)."""
        self.caregivers_undecided = True
        """The courier's last word: whether the service is there cannot be said yet (its
        connection under way; True until a courier first speaks: nothing is known then).
        The session runner looks again while an arming's answer was undecided."""
        self.dropped = 0
        """Informational events dropped by the pending bound."""
        self.attaches = 0
        self._silences: list[messages.SilenceBuzzer] = []
        """Caregivers' silences not yet taken by the loop (at most the messages one poll
        reads: the loop takes them all at its next iteration)."""
        self._silence_answers: deque[tuple[float, bytes]] = deque(maxlen=SILENCE_ANSWERS_KEPT)
        """The loop's recent answers to silences (real time, frame): a courier attached within
        :data:`SILENCE_ANSWER_KEEP_S` gets them again (see :meth:`answer_silence`)."""
        self.chirp_requests = 0
        self.requests_arrived = 0
        """Bumped with every request for the loop (silence, chirp, an incident closed or still
        open); its reader resets it after taking them all, so an idle loop looks at one int."""
        self._closed_incidents: deque[str] = deque(maxlen=16)
        self._open_incident: str | None = None
        self._polled_real = 0.0
        self._heard_real = 0.0
        self._plan_revisions: dict[str, int] = {}
        self._new_plan: dict[str, Plan | None] | None = None
        """Plans assigned since the loop last looked, by walker (None: none waiting)."""
        self._roster_revision: tuple[int, int] | None = None
        self._new_roster: messages.WalkerRoster | None = None
        self._choices_sent = 0
        self._unconfirmed_choice: str | None = None
        """The walker last chosen with the button until a roster says the courier stored it:
        sent again to a courier that replaces one which may never have had it."""
        """Walker choices handed to this courier (it counts those it stored the same way)."""
        self.session_walker: str | None = None
        """The walker of the guided session under way (None: none), set by the session runner:
        every event handed over names them, so an incident it opens is theirs whoever is
        chosen for the next session meanwhile."""

    # ------------------------------------------------ any thread (supervisor)

    def attach(self, sock: socket.socket) -> None:
        """A new courier listens on ``sock``; the loop switches to it at its next poll."""
        sock.setblocking(False)
        self._incoming_sock = sock

    # ------------------------------------------------------ loop thread only

    def hello(self, payload: bytes) -> None:
        """The first frame every courier gets (its configuration), on each attach."""
        self._hello = payload

    def submit(self, event: Event) -> None:
        """Hand an event over: stored by the courier, then published. Never blocks."""
        payload = messages.encode(messages.EventRecord(event, self.session_walker))
        self._remember(event.id, payload, event.type in PROTECTED_TYPES)
        self._writer.put(payload)

    def handle(self, event: Event) -> None:
        """:class:`firmware.sinks.EventSink` form of :meth:`submit`."""
        self.submit(event)

    def report_state(
        self,
        state: str,
        reason: str,
        wall_time: str,
        wall_unsynced: bool = False,
        *,
        worn: WornSaid | None = None,
        fault: FaultSaid | None = None,
    ) -> None:
        report = messages.StateReport(state, reason, wall_time, wall_unsynced, worn, fault)
        payload = messages.encode(report)
        self._last_state = payload
        self._writer.put(payload)

    def report_health(self, health: DeviceHealth, checks: Mapping[str, tuple[bool, str]]) -> None:
        report = messages.HealthReport(
            health, {name: messages.Check(ok, detail) for name, (ok, detail) in checks.items()}
        )
        self._writer.put(messages.encode(report))

    def submit_session(self, record: SessionRecord, final: bool) -> None:
        payload = messages.encode(messages.SessionReport(record, final))
        if final:
            self._remember(messages.session_key(record), payload, protected=True)
        if not record.amended:  # an ended session's amendment says nothing of the one now
            self._last_session = None if final or record.ended else payload
        self._writer.put(payload)

    def goodbye(self, reason: str, await_receipts_s: float = 0.0) -> None:
        """Tell the courier the monitor is stopping (``await_receipts_s``:
        :class:`~firmware.link.messages.Goodbye`)."""
        self._writer.put(messages.encode(messages.Goodbye(reason, await_receipts_s)))

    def poll(self, _: object = None) -> None:
        """Switch to a new courier if one was attached, send what fits, read what came."""
        self._polled_real = self._real()
        incoming = self._incoming_sock
        if incoming is not None:
            self._incoming_sock = None
            self._switch_to(incoming)
        sock = self._sock
        if sock is None:
            return
        try:
            if self._pending and self.storage_ok:  # one look at the oldest
                self._resend_unconfirmed()
            if self._writer.queued_bytes:  # most iterations have nothing to send
                self._writer.send_some(sock, SEND_BUDGET)
            readable = self._readable
            if readable is None or readable.poll(0):  # most find nothing: no call further
                self._receive(sock)
        except (OSError, FrameError, msgspec.DecodeError) as exc:
            log.warning("courier link lost: %s", exc)
            self._drop_socket()

    def await_storage_report(self, timeout: float) -> bool:
        """Pump until the courier has said how its storage is; False on timeout.

        Only while the loop is not running (it polls on the caller's thread).
        """
        return self._pump_until(lambda: self.storage_ok is not None, timeout, writing=False)

    def flush(self, timeout: float, *, on_disk: bool = True) -> bool:
        """Pump until everything handed over is sent and on disk; False on timeout.

        ``on_disk=False``: until it is sent (the courier has it, in order) — at
        shutdown while the courier's disk refuses writes, waiting for "on disk"
        would only run out the clock.
        For shutdown, tests and the demo: call it only while the loop is not
        running (it polls on the caller's thread).
        """

        def sent() -> bool:
            settled = not self._pending or not on_disk
            return settled and not len(self._writer) and self._sock is not None

        return self._pump_until(sent, timeout, writing=True)

    def _pump_until(self, done: Callable[[], bool], timeout: float, *, writing: bool) -> bool:
        """Poll until ``done()``; False when ``timeout`` passes first. Between polls it waits on
        the courier's socket (readable, and with ``writing`` writable while bytes wait to go
        out), or briefly while there is none. Only while the loop is not running: it polls on
        the caller's thread (:meth:`await_storage_report`, :meth:`flush`)."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            sock = self._sock
            if sock is not None:
                sending = [sock] if writing and len(self._writer) else []
                select.select([sock], sending, [], min(remaining, 0.05))
            else:
                time.sleep(min(remaining, 0.01))

    def close(self, timeout: float = 1.0) -> None:
        """Send what is queued (a goodbye, say) within ``timeout``, then close: the courier
        sees the end of the stream. Only once the loop has stopped."""
        deadline = time.monotonic() + timeout
        while len(self._writer) and self._sock is not None and time.monotonic() < deadline:
            self.poll()
            sock = self._sock
            if sock is not None and len(self._writer):
                select.select([], [sock], [], 0.05)
        self._incoming_sock = None
        self._drop_socket()

    def real_time(self) -> float:
        """Now on the real clock the courier's silence is measured on (any thread): the
        supervisor times a courier from its start on it (``since`` below)."""
        return self._real()

    def courier_silent_for(self, since: float) -> float:
        """Seconds the courier has been silent while the loop was listening (real time).

        A loop that is not polling (stopped, or a test between steps) hears
        nothing, and that is not the courier's fault: then this is 0.
        """
        now = self._real()
        if now - self._polled_real > 1.0:
            return 0.0
        return now - max(since, self._heard_real)

    def courier_hung(self, since: float) -> bool:
        """Whether the courier started at ``since`` (:meth:`real_time`) is presumed hung: silent
        for :data:`COURIER_SILENT_S` since its last word, or for :data:`COURIER_START_SILENT_S`
        if it has not said a word yet (still starting)."""
        spoke = self._heard_real >= since
        limit = COURIER_SILENT_S if spoke else COURIER_START_SILENT_S
        return self.courier_silent_for(since) > limit

    @property
    def pending(self) -> int:
        """Records handed over and not yet confirmed on disk."""
        return len(self._pending)

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def storage_problem(self, now: float) -> str | None:
        """Why alerts cannot be persisted right now, or None when they can (as far as known).

        Until the courier first speaks, start-up grace applies: a monitor that
        boots faster than its courier may still be armed by a person at the
        machine; its events wait here, in memory, until the courier stores them.
        """
        if self.storage_ok is False:
            return self.storage_detail
        heard = self.last_heard
        if heard is None:
            if now - self.started_at > STARTUP_GRACE_S:
                return "the courier (storage and network) has not started"
            return None
        # The courier is a real process that speaks every second of real time; a loop on a
        # simulated clock may run far faster than that, so silence counts on both clocks.
        silent = min(now - heard, self._real() - self._heard_real)
        if silent > COURIER_SILENT_S:
            return f"the courier has not answered for {silent:.0f} s"
        return None

    def take_chirp(self) -> bool:
        """True once per batch of test alarms since the last call."""
        if self.chirp_requests:
            self.chirp_requests = 0
            return True
        return False

    def take_plan(self) -> dict[str, Plan | None] | None:
        """Newly assigned plans once, by walker (a None plan: back to the config's); else
        None."""
        new, self._new_plan = self._new_plan, None
        return new

    def take_roster(self) -> tuple[messages.WalkerRoster, bool] | None:
        """The walker roster once when it changed, and whether its ``selected`` is current (the
        courier has stored every choice the loop made: else it is an older state, which must
        not undo the walker's latest press); else None. Never blocks."""
        new, self._new_roster = self._new_roster, None
        if new is None:
            return None
        current = new.choices >= self._choices_sent
        if current:
            self._unconfirmed_choice = None
        return new, current

    def choose_walker(self, walker_id: str) -> None:
        """The button chose a walker: the courier stores it. Never blocks (a put)."""
        self._choices_sent += 1
        self._unconfirmed_choice = walker_id
        self._writer.put(messages.encode(messages.WalkerChosen(walker_id)))

    def session_walker_is(self, walker_id: str | None) -> None:
        """The session runner's word: whose session is under way (None: none). Never blocks."""
        self.session_walker = walker_id
        if walker_id is None:
            self._last_session = None  # nothing under way to tell a new courier about

    def take_closed_incidents(self) -> list[str]:
        """Incidents caregivers closed since the last call (oldest first). Never blocks."""
        if not self._closed_incidents:
            return []
        closed = list(self._closed_incidents)
        self._closed_incidents.clear()
        return closed

    def take_open_incident(self) -> str | None:
        """The open incident the courier found on record, once (None: none, or taken)."""
        found, self._open_incident = self._open_incident, None
        return found

    @property
    def silence_requests(self) -> int:
        """Caregivers' silences waiting for the loop."""
        return len(self._silences)

    def take_silences(self) -> list[messages.SilenceBuzzer]:
        """Caregivers' silences since the last call, oldest first (each to be answered with
        :meth:`answer_silence`). Never blocks."""
        if not self._silences:
            return []
        taken, self._silences = self._silences, []
        return taken

    def answer_silence(self, request_id: str | None, result: SilenceResult) -> None:
        """Tell the courier what a silence came to (it replies to the caregiver). Queued like
        every message to the courier, never waited for.

        Kept a while too: the courier that took the command may be replaced before it has
        replied (it crashed or hung between the command and the loop's answer; the answer
        then sat unsent in the queue a new courier starts without, or went down with it).
        A courier attached within :data:`SILENCE_ANSWER_KEEP_S` gets the recent answers
        after its hello and publishes them, each under its request id — again, if the one
        before had already replied: a caller may see the same reply twice (as QoS 1 allows
        anyway), never none."""
        payload = messages.encode(messages.SilenceAnswered(result, request_id))
        self._silence_answers.append((self._real(), payload))
        self._writer.put(payload)

    # ---------------------------------------------------------------- inside

    def _switch_to(self, sock: socket.socket) -> None:
        self._drop_socket()
        self._sock = sock
        self._readable = select.poll()
        self._readable.register(sock, select.POLLIN)
        self.attaches += 1
        self._choices_sent = 0  # a new courier: choices not yet on its way are not counted
        self._roster_revision = None
        self._writer.clear()
        self._reader.clear()
        if self._hello is not None:
            self._writer.put(self._hello)
        if self._last_state is not None:
            self._writer.put(self._last_state)
        if self._last_session is not None:  # its progress is that session's walker's
            self._writer.put(self._last_session)
        now = self._real()
        for record in self._pending.values():
            record.sent_at = now
            self._writer.put(record.payload)
        if self._unconfirmed_choice is not None:  # the old courier may have lost it unsent
            self._choices_sent = 1
            self._writer.put(messages.encode(messages.WalkerChosen(self._unconfirmed_choice)))
        recent = now - SILENCE_ANSWER_KEEP_S
        for answered_at, answer in self._silence_answers:  # the old one may not have replied
            if answered_at >= recent:
                self._writer.put(answer)

    def _resend_pending(self) -> None:
        """Storage is back: hand over again what is still not on disk (the courier stores by id).

        What the courier kept in memory it has confirmed just before saying so;
        what remains here is what it could not keep at all (its memory full).
        """
        now = self._real()
        for record in self._pending.values():
            record.sent_at = now
            self._writer.put(record.payload)

    def _resend_unconfirmed(self) -> None:
        """Hand over again records unconfirmed for :data:`UNCONFIRMED_RESEND_S` while storage
        works (a few an iteration, oldest first; each goes to the end of the line)."""
        now = self._polled_real
        due = now - UNCONFIRMED_RESEND_S
        resent = 0
        for _ in range(RESEND_PER_POLL):
            key, record = next(iter(self._pending.items()))
            if record.sent_at > due:
                break
            record.sent_at = now
            self._pending.move_to_end(key)
            self._writer.put(record.payload)
            resent += 1
        if resent:
            log.warning(
                "%d records not confirmed on disk by the courier within %.0f s although its "
                "storage works: handed over again (its log says why)",
                resent,
                UNCONFIRMED_RESEND_S,
            )

    def _drop_socket(self) -> None:
        self._readable = None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _remember(self, key: str, payload: bytes, protected: bool) -> None:
        if key in self._pending:
            return
        self._pending[key] = _Pending(payload, protected, self._real())
        self._pending_bytes += len(payload)
        if self._pending_bytes > self._max_pending:
            self._shed()

    def _shed(self) -> None:
        for key in [k for k, p in self._pending.items() if not p.protected]:
            if self._pending_bytes <= self._max_pending:
                break
            self._forget(key)
            self.dropped += 1
        if self._pending_bytes > self._max_pending:
            log.warning(
                "%d unpersisted alerts hold %d bytes, over the %d-byte bound: kept (alerts are "
                "never dropped)",
                len(self._pending),
                self._pending_bytes,
                self._max_pending,
            )

    def _forget(self, key: str) -> None:
        record = self._pending.pop(key, None)
        if record is not None:
            self._pending_bytes -= len(record.payload)

    def _receive(self, sock: socket.socket) -> None:
        """Read what came, once :meth:`poll` asked whether anything did (or has no way to ask).

        Asked first each time: most polls find nothing, and a recv() that finds nothing
        raises, which costs the loop several times the question (every iteration)."""
        readable = self._readable
        handled = 0
        while True:
            try:
                data = sock.recv(READ_CHUNK)
            except BlockingIOError:
                return
            if not data:
                raise ConnectionResetError("the courier closed the link")
            for frame in self._reader.feed(data):
                self._apply(messages.decode_for_loop(frame))
                handled += 1
            if handled >= MAX_MESSAGES_PER_POLL or (readable is not None and not readable.poll(0)):
                return

    def _apply(self, message: messages.ToLoop) -> None:
        self.last_heard = self._clock()
        self._heard_real = self._real()
        match message:
            case messages.Persisted(ids=ids):
                for key in ids:
                    self._forget(key)
            case messages.StorageHealth(ok=ok, detail=detail):
                if ok != self.storage_ok:
                    log.log(logging.INFO if ok else logging.ERROR, "storage: %s", detail)
                if ok and self.storage_ok is False:
                    self._resend_pending()
                self.storage_ok, self.storage_detail = ok, detail
            case messages.SilenceBuzzer():
                self._silences.append(message)
                self.requests_arrived += 1
            case messages.Chirp():
                self.chirp_requests += 1
                self.requests_arrived += 1
            case messages.IncidentClosed(incident=incident):
                self._closed_incidents.append(incident)
                self.requests_arrived += 1
            case messages.OpenIncident(incident=incident):
                self._open_incident = incident
                self.requests_arrived += 1
            case messages.CourierAlive(
                broker_connected=connected,
                outbox_depth=depth,
                caregivers_away=away,
                caregivers_undecided=undecided,
            ):
                self.broker_connected, self.outbox_depth = connected, depth
                self.caregivers_away, self.caregivers_undecided = away, undecided
            case messages.PlanAssigned(revision=revision, plan=plan, by=by, walker=walker):
                if revision != self._plan_revisions.get(walker):
                    self._plan_revisions[walker] = revision
                    if self._new_plan is None:
                        self._new_plan = {}
                    self._new_plan[walker] = plan
                    log.info(
                        "plan %s for walker %s (revision %d, by %s): from their next session",
                        "of the config" if plan is None else repr(plan.name),
                        walker,
                        revision,
                        by,
                    )
            case messages.WalkerRoster(revision=revision, choices=choices):
                if (revision, choices) != self._roster_revision:
                    self._roster_revision = (revision, choices)
                    self._new_roster = message
