"""A transaction's operations on plan commands and their answers, and self-tests.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from caregiver.storage.records import SelfTestOutcome, SelfTestRecord, SentCommand
from caregiver.storage.tx_base import _TxBase
from core.protocol.commands import CommandName


class TxCommands(_TxBase):
    """A transaction's operations on plan commands and their answers, and self-tests."""

    # ------------------------------------------- plan commands and answers

    def command_sent(self, command: SentCommand, keep: int) -> None:
        """Record a command about to be published (pending); keep the newest ``keep`` of its
        walker's (of the device's, for a command of no walker)."""
        self._db.execute(
            "INSERT INTO device_commands (request_id, device_id, command, summary, sent_by, "
            "sent_at, status, walker) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (
                command.request_id,
                command.device_id,
                command.command,
                command.summary,
                command.sent_by,
                command.sent_at,
                command.walker,
            ),
        )
        if command.walker is None:
            self._db.execute(
                "DELETE FROM device_commands WHERE device_id = ? AND request_id NOT IN "
                "(SELECT request_id FROM device_commands WHERE device_id = ? "
                "ORDER BY sent_at DESC, request_id LIMIT ?)",
                (command.device_id, command.device_id, keep),
            )
            return
        # the walker's newest ``keep``: on a shared treadmill, commands sent for one walker
        # deleted every other's, and their plan page said nothing had been sent for them
        self._db.execute(
            "DELETE FROM device_commands WHERE device_id = ? AND walker = ? AND request_id "
            "NOT IN (SELECT request_id FROM device_commands WHERE device_id = ? AND walker = ? "
            "ORDER BY sent_at DESC, request_id LIMIT ?)",
            (command.device_id, command.walker, command.device_id, command.walker, keep),
        )

    def forget_command(self, request_id: str) -> None:
        """A command that could not be published."""
        self._db.execute("DELETE FROM device_commands WHERE request_id = ?", (request_id,))

    def command_answered(
        self, device_id: str, request_id: str, ok: bool, answer: str, now: float
    ) -> bool:
        """The device's reply to a command this service sent it (the first answer counts; a
        reply naming another device's request changes nothing); True when it changed a row."""
        cursor = self._db.execute(
            "UPDATE device_commands SET status = ?, answered_at = ?, answer = ? "
            "WHERE request_id = ? AND device_id = ? AND status = 'pending'",
            ("accepted" if ok else "refused", now, answer, request_id, device_id),
        )
        return cursor.rowcount > 0

    def sent_commands(
        self, device_id: str, limit: int, walker: str | None = None
    ) -> list[SentCommand]:
        # ``walker``: theirs, and those sent before commands kept their walker (schema 23)
        mine = "" if walker is None else "AND (walker = ? OR walker IS NULL) "
        rows = self._db.execute(
            "SELECT request_id, device_id, command, summary, sent_by, sent_at, status, "
            f"answered_at, answer, walker FROM device_commands WHERE device_id = ? {mine}"
            "ORDER BY sent_at DESC, request_id LIMIT ?",
            (device_id, limit) if walker is None else (device_id, walker, limit),
        ).fetchall()
        return [
            SentCommand(
                request_id=str(r[0]),
                device_id=str(r[1]),
                command=CommandName(str(r[2])),
                summary=str(r[3]),
                sent_by=str(r[4]),
                sent_at=float(r[5]),
                status="accepted"
                if r[6] == "accepted"
                else "refused"
                if r[6] == "refused"
                else "pending",
                answered_at=None if r[7] is None else float(r[7]),
                answer=None if r[8] is None else str(r[8]),
                walker=None if r[9] is None else str(r[9]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ self-tests

    def self_test_asked(self, device_id: str, request_id: str, by: str, now: float) -> None:
        """Record a self-test about to be published; the answer before it is kept."""
        self._db.execute(
            "INSERT INTO self_tests (device_id, request_id, asked_by, asked_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
            "request_id = excluded.request_id, asked_by = excluded.asked_by, "
            "asked_at = excluded.asked_at",
            (device_id, request_id, by, now),
        )

    def self_test_unsent(self, device_id: str, request_id: str) -> None:
        """A self-test that could not be published: the row is as if it was never asked for
        (the answer before it stays; a device never checked has no row again)."""
        self._db.execute(
            "DELETE FROM self_tests WHERE device_id = ? AND request_id = ? "
            "AND answered_request_id IS NULL",
            (device_id, request_id),
        )
        self._db.execute(
            "UPDATE self_tests SET request_id = answered_request_id "
            "WHERE device_id = ? AND request_id = ?",
            (device_id, request_id),
        )

    def self_test_answered(
        self,
        device_id: str,
        request_id: str,
        outcome: SelfTestOutcome,
        reason: str,
        checks: Sequence[tuple[str, bool, str]],
        now: float,
    ) -> bool:
        """The device's answer to the newest self-test asked for it; True when it was (an
        answer to an older one, or to another sender's, changes nothing)."""
        cursor = self._db.execute(
            "UPDATE self_tests SET answered_request_id = request_id, answered_at = ?, "
            "outcome = ?, reason = ?, checks = ? WHERE device_id = ? AND request_id = ?",
            (
                now,
                outcome,
                reason,
                json.dumps([list(c) for c in checks]),
                device_id,
                request_id,
            ),
        )
        return cursor.rowcount > 0

    def self_test(self, device_id: str) -> SelfTestRecord | None:
        row = self._db.execute(
            "SELECT request_id, asked_by, asked_at, answered_request_id, answered_at, outcome, "
            "reason, checks FROM self_tests WHERE device_id = ?",
            (device_id,),
        ).fetchone()
        if row is None:
            return None
        outcome = row[5]
        return SelfTestRecord(
            device_id=device_id,
            request_id=str(row[0]),
            asked_by=str(row[1]),
            asked_at=float(row[2]),
            answered_request_id=None if row[3] is None else str(row[3]),
            answered_at=None if row[4] is None else float(row[4]),
            outcome="passed"
            if outcome == "passed"
            else "failed"
            if outcome == "failed"
            else "refused"
            if outcome == "refused"
            else None,
            reason=str(row[6] or ""),
            checks=tuple((str(n), bool(ok), str(d)) for n, ok, d in json.loads(row[7] or "[]")),
        )
