"""Receipts sent once what they vouch for is on disk: the second half of ingest's group commit.

A receipt tells a device that the service has its event and the device may delete it
(safety rule 4), so it may only go out once the event would survive a power cut. Ingest
stores a batch with a commit that does not wait for the disk (SQLite ``synchronous=NORMAL``
for that commit: :meth:`caregiver.storage.Store.batch` with ``synced=False``), shows it to the
browsers and pages the contacts at once, and hands the batch's receipts to the thread here,
which syncs what has been committed (:meth:`caregiver.storage.Store.sync_committed`: the WAL,
one ``fsync``) and only then publishes them.

Why not sync in the commit (``synchronous=FULL``, one ``fsync`` a commit): ingest waited for
the disk between batches, and in a burst of 500 events from 200 devices
(``benchmarks/caregiver.py``) every event behind waited too: event to browser p99 944/1233 ms
against NORMAL's 341/714 ms, and 461/445 ms with this, the three run alternately
(docs/caregiver.md, *Figures*). Here one sync covers every batch committed while the previous
sync ran (a group commit), and nothing but the receipts waits for it.

If a sync fails, its receipts are not sent: the devices keep those events and send them
again, ingest finds them stored (duplicates), and their receipts go out after a later sync
that works. A receipt is never sent for an event that is not on disk; the cost of a failure
is a resend, never a loss.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from caregiver.storage.faults import StorageFault

log = logging.getLogger(__name__)


class DurableReceipts:
    """A thread that publishes receipts after syncing the commits they follow.

    ``sync``: makes every commit that returned before it durable (raises
    :class:`StorageFault`); ``publish``: sends each device its receipt for its ids (one call
    a sync, so the caller can wake its MQTT client once for all); ``on_fault``: told of a
    failed sync (the service reports it as a storage fault)."""

    def __init__(
        self,
        sync: Callable[[], None],
        publish: Callable[[Mapping[str, list[str]]], None],
        on_fault: Callable[[StorageFault], None],
    ) -> None:
        self._sync = sync
        self._publish = publish
        self._on_fault = on_fault
        self._pending: dict[str, list[str]] = {}
        self._changed = threading.Condition()
        self._stopping = False
        self.syncs = 0
        """Syncs done (each covering every receipt submitted before it began)."""
        self._thread = threading.Thread(target=self._run, name="caregiver-receipts", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The thread that syncs and publishes (the service's liveness watches it)."""
        return self._thread

    def submit(self, receipts: Mapping[str, Sequence[str]]) -> None:
        """Receipts for a batch that has committed (any thread; never waits for the disk)."""
        if not receipts:
            return
        with self._changed:
            for device_id, ids in receipts.items():
                mine = self._pending.setdefault(device_id, [])
                mine.extend(i for i in ids if i not in mine)
            self._changed.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what was submitted (after a last sync), then end the thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending) or self._stopping)
                # Taken before the sync begins: each of these batches committed before it.
                taken, self._pending = self._pending, {}
                stopping = self._stopping
            if taken:
                self._sync_and_send(taken)
            if stopping and not taken:
                return

    def _sync_and_send(self, taken: dict[str, list[str]]) -> None:
        try:
            self._sync()
        except StorageFault as exc:
            self._on_fault(exc)
            log.error(
                "receipts for %d events held back (their devices send them again): %s",
                sum(len(ids) for ids in taken.values()),
                exc,
            )
            return
        except Exception:  # a bug here must not end the thread: the devices resend
            log.exception("syncing the database before receipts failed")
            return
        self.syncs += 1
        try:
            self._publish(taken)
        except Exception:  # as a lost receipt: the devices send those events again
            log.exception("receipts could not be published")
