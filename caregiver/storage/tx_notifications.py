"""A transaction's operations on the notification outbox's rows.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from caregiver import outbox
from caregiver.storage.records import ClockFrame, PendingNotification, Urgency
from caregiver.storage.tx_base import _TxBase

if TYPE_CHECKING:
    from caregiver.config import Contact


class TxNotifications(_TxBase):
    """A transaction's operations on the notification outbox's rows."""

    def queue_notification(
        self,
        alert_id: int,
        contact: str,
        contact_index: int,
        url_index: int,
        title: str,
        body: str,
        now: float,
        *,
        contact_key: str,
        url_key: str,
        urgency: Urgency = Urgency.NORMAL,
    ) -> None:
        """A message for one URL of one contact, due now (the notifier sends it with the
        Apprise type and the service's priority ``urgency`` calls for). Addressed by
        ``contact_key`` (the contact's name, "" for none) and ``url_key``
        (:func:`caregiver.outbox.url_key`): :func:`caregiver.outbox.addressee` finds them in
        the config wherever they have moved; the positions are kept for the logs and for
        rows from before (schema 17)."""
        self._db.execute(
            "INSERT INTO notifications (alert_id, contact, contact_index, url_index, "
            "title, body, next_at, created_at, urgency, contact_key, url_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                contact,
                contact_index,
                url_index,
                title,
                body,
                now,
                now,
                urgency.value,
                contact_key,
                url_key,
            ),
        )

    def notifications_due(self, now: float) -> list[PendingNotification]:
        return outbox.due_from(self._db.execute(outbox.DUE, (now,)).fetchall())

    def next_notification_at(self, after: float) -> float | None:
        return outbox.next_due_from(self._db.execute(outbox.NEXT_DUE, (after,)).fetchone())

    def notification_sent(self, notification_id: int, attempts: int) -> None:
        self._db.execute(outbox.SENT, (attempts, notification_id))

    def retry_notification(
        self, notification_id: int, attempts: int, next_at: float, error: str, frame: ClockFrame
    ) -> None:
        self._db.execute(
            outbox.RETRY, (attempts, next_at, error, frame.of, frame.offset, notification_id)
        )

    def shift_notifications(self, frame: ClockFrame, step: float) -> None:
        for statement, parameters in outbox.shift_statements(frame, step):
            self._db.execute(statement, parameters)

    def give_up_notification(
        self, notification_id: int, attempts: int, error: str, now: float
    ) -> None:
        self._db.execute(outbox.GIVE_UP, (attempts, now, error, notification_id))

    def drop_notification(self, notification_id: int, reason: str) -> None:
        """Never sent (e.g. its contact left the config)."""
        self._db.execute(outbox.DROP, (reason, notification_id))

    def still_due(self, notification_id: int) -> bool:
        """Still pending: not dropped since it was read as due (its alert closed meanwhile)."""
        return self._db.execute(outbox.STILL_DUE, (notification_id,)).fetchone() is not None

    def claim_notification(self, notification_id: int, attempts: int) -> bool:
        """:meth:`caregiver.outbox.Outbox.claim_notification`: the attempt counted as it
        begins, if the row is still due."""
        return self._db.execute(outbox.CLAIM, (attempts, notification_id)).rowcount > 0

    def drop_notifications_unaddressed(
        self, contacts: Sequence[Contact], reason: str
    ) -> list[PendingNotification]:
        """Every pending notification whose contact or URL ``contacts`` no longer has
        (:func:`caregiver.outbox.addressee`), marked failed; returns them. Before, this
        dropped the rows whose contact *index* was past the list's end: a contact that moved
        up a shortened list lost its pages, and one removed from the middle kept them, sent to
        whoever moved into its place."""
        gone = [
            note
            for note in outbox.due_from(self._db.execute(outbox.PENDING).fetchall())
            if outbox.addressee(contacts, note) is None
        ]
        for note in gone:
            self._db.execute(outbox.DROP, (reason, note.id))
        return gone
