"""Receipts go out only after a sync that began after their batch committed (safety rule 4):
caregiver.receipts.DurableReceipts, driven through its own interface (the sync and the publish
are the callables the ingest gives it; the disk side is tests/test_caregiver_storage.py's)."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import pytest

from caregiver.receipts import DurableReceipts
from caregiver.storage.faults import StorageFault

WAIT = 10.0
"""A bound against hangs, never a timing."""


class _Disk:
    """A sync the test holds until it lets it go, and what was published after which sync."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.syncs_done = 0
        self.fail_next = False
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.published = threading.Condition(self.lock)
        self.faults: list[StorageFault] = []

    def sync(self) -> None:
        self.entered.release()
        assert self.release.acquire(timeout=WAIT), "the test never let the sync go"
        with self.lock:
            if self.fail_next:
                self.fail_next = False
                self.log.append(("failed sync", None))
                raise StorageFault("caregiver database: syncing its log to disk: EIO")
            self.syncs_done += 1
            self.log.append(("sync", self.syncs_done))

    def publish(self, receipts: Mapping[str, list[str]]) -> None:
        with self.lock:
            self.log.append(("publish", {d: list(ids) for d, ids in receipts.items()}))
            self.published.notify_all()

    def on_fault(self, exc: StorageFault) -> None:
        self.faults.append(exc)

    def wait_published(self, count: int) -> None:
        with self.lock:
            assert self.published.wait_for(
                lambda: sum(kind == "publish" for kind, _ in self.log) >= count, WAIT
            )


@pytest.fixture
def disk() -> _Disk:
    return _Disk()


def _receipts(disk: _Disk) -> DurableReceipts:
    return DurableReceipts(disk.sync, disk.publish, disk.on_fault)


def test_a_receipt_waits_for_a_sync_begun_after_its_batch_committed(disk: _Disk) -> None:
    """A batch's receipts are held while the sync that covers it runs; a batch committed
    during that sync is not covered by it and waits for the next one; batches waiting
    together share one sync and one receipt a device."""
    receipts = _receipts(disk)
    try:
        receipts.submit({"t1": ["a", "b"]})
        assert disk.entered.acquire(timeout=WAIT)  # the sync for a, b has begun
        receipts.submit({"t1": ["c"], "t2": ["d"]})  # committed while it runs
        receipts.submit({"t1": ["c", "e"]})  # c again (a resend): named once
        with disk.lock:
            assert disk.log == []  # nothing published while the disk has not said yes
        disk.release.release()
        disk.wait_published(1)
        assert disk.entered.acquire(timeout=WAIT)  # the next sync, for c, d, e
        with disk.lock:
            assert disk.log == [("sync", 1), ("publish", {"t1": ["a", "b"]})]
        disk.release.release()
        disk.wait_published(2)
        with disk.lock:
            assert disk.log[2:] == [("sync", 2), ("publish", {"t1": ["c", "e"], "t2": ["d"]})]
    finally:
        disk.release.release()
        receipts.stop()


def test_a_failed_sync_sends_none_of_its_receipts_and_says_so(disk: _Disk) -> None:
    """Receipts whose sync failed are never sent (their devices keep the events and send them
    again); the fault is reported; later batches are receipted after a sync that works."""
    receipts = _receipts(disk)
    try:
        disk.fail_next = True
        receipts.submit({"t1": ["a"]})
        assert disk.entered.acquire(timeout=WAIT)
        disk.release.release()
        receipts.submit({"t1": ["b"]})
        assert disk.entered.acquire(timeout=WAIT)
        disk.release.release()
        disk.wait_published(1)
        with disk.lock:
            assert disk.log == [("failed sync", None), ("sync", 1), ("publish", {"t1": ["b"]})]
        assert [str(f) for f in disk.faults] == ["caregiver database: syncing its log to disk: EIO"]
    finally:
        disk.release.release()
        receipts.stop()


def test_stopping_sends_what_was_submitted_after_a_last_sync(disk: _Disk) -> None:
    receipts = _receipts(disk)
    receipts.submit({"t1": ["a"]})
    disk.release.release()  # let the one sync through whenever it comes
    receipts.stop(WAIT)
    with disk.lock:
        assert disk.log == [("sync", 1), ("publish", {"t1": ["a"]})]


def test_a_sync_that_fails_with_a_bug_sends_none_of_its_receipts(disk: _Disk) -> None:
    """A sync that fails other than as a storage fault (a bug) is no proof either: its
    receipts are held (their devices send the events again), the thread goes on, and the next
    batch is receipted after a sync that works. Mutant that survived (mut25): the ``return``
    after logging the bug dropped, so receipts went out for events the disk had not
    confirmed — and a device that deleted them then lost them with a power cut."""
    buggy = [True]

    def sync() -> None:
        if buggy:  # the first sync only
            buggy.clear()
            disk.entered.release()
            raise RuntimeError("a bug in the sync")
        disk.sync()

    receipts = DurableReceipts(sync, disk.publish, disk.on_fault)
    try:
        receipts.submit({"t1": ["a"]})
        assert disk.entered.acquire(timeout=WAIT)  # the buggy sync ran
        receipts.submit({"t1": ["b"]})
        disk.release.release()
        disk.wait_published(1)
        with disk.lock:
            assert disk.log == [("sync", 1), ("publish", {"t1": ["b"]})]
    finally:
        disk.release.release()
        receipts.stop()
