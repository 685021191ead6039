"""How long a statement on PostgreSQL may wait for a lock, and run, before the server ends it.

Without a limit a statement waits for a lock as long as whoever holds it: an operator's
``ALTER TABLE``, ``VACUUM FULL`` or ``LOCK TABLE`` in psql, a migration queued behind a
``pg_dump``, a transaction left open. The store's one writing connection waited there with
the store's lock held, so ingest (falls), the dashboard's writes and the escalation ticker all
stopped, and nothing said so. With these limits the server ends such a statement with an
error (``LockNotAvailable``, ``QueryCanceled``: psycopg's ``OperationalError`` s), which the
store turns into a :class:`~caregiver.storage.StorageFault` like any other: ingest holds the
message with the broker and tries again, the ticker says escalation is held, the banner says
the database refuses, and once the lock is gone the same message goes through.

Every connection the caregiver opens to PostgreSQL gets them (the store's writer, its pooled
readers, the ``NOTIFY`` and ``LISTEN`` connections, the notifier process's store), as
startup ``options`` ahead of any the ``[server] database`` URL gives itself: an operator who
needs other values sets them there (``?options=-c%20statement_timeout%3D60000``) or in
``PGOPTIONS`` (read when the URL gives none, as libpq does), and theirs win. The migrations
at start set their own (:data:`MIGRATION_LOCK_TIMEOUT_S`).
"""

from __future__ import annotations

import dataclasses
import os

LOCK_TIMEOUT_S = 5.0
"""How long a statement waits for a lock another session holds.

Long enough for every lock the service's own work takes: another instance's ingest batch
holds its devices' rows for one batch (at most 50 messages, stored in well under a second:
a 500-event burst took 0.72 s whole on one instance, docs/provider.md *Figures*), an
acknowledgement or an escalation tick for a few statements. Short enough that a fall held by
someone else's lock is said (a StorageFault, the banner) and retried within seconds: ingest's
retry, not a wait on the lock, is what brings it in once the lock is gone."""

STATEMENT_TIMEOUT_S = 15.0
"""How long one statement may run, lock waits included.

Long enough for the biggest statement the service runs: a report's or a progress page's read
of one device's months of rows (by index: milliseconds on a laptop, well under a second on a
Pi-class server), a retention sweep's delete of what aged past its limit since the last sweep
(``sweep_hours``: a few hours' rows). Short enough that a server which has stopped answering
in time holds a fall seconds, not minutes: a writing statement runs with the store's lock
held, and the escalation ticker waits behind it (it must turn within
:data:`caregiver.service.TICKER_WITHIN_S`, 30 s: a statement waited for and its own fit)."""

MIGRATION_LOCK_TIMEOUT_S = 45.0
"""How long the migrations at start wait for a lock (``SET LOCAL``, their transaction only):
for another instance migrating the same database (the advisory lock) or a table another
session holds. Longer than :data:`LOCK_TIMEOUT_S`: nothing is served from this process yet,
and instances started together wait for the first one's migration rather than fail. Shorter
than the unit's ``TimeoutStartSec`` (60 s), so the start ends with the service's own line
naming the lock (exit 1, started again) rather than being killed by systemd saying nothing.
Their statement timeout is off: a migration rewriting a big table is work, not a hang, and
one bounded here could never finish; under systemd the start's timeout bounds it, and an
upgrade that needs longer is run once by hand (``retroguard caregiver users`` opens the
database and migrates it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StatementTimeouts:
    """The two limits every PostgreSQL connection of the caregiver runs under (tests give
    small ones to see a held lock end without waiting the real ones out)."""

    lock_s: float = LOCK_TIMEOUT_S
    statement_s: float = STATEMENT_TIMEOUT_S

    def options(self, url: str) -> str:
        """The ``options`` startup parameter for a connection to ``url``: these limits, then
        whatever ``options`` the URL gives (which PostgreSQL applies after, so they win)."""
        ours = f"-c lock_timeout={_ms(self.lock_s)} -c statement_timeout={_ms(self.statement_s)}"
        given = _url_options(url)
        return f"{ours} {given}" if given else ours


STATEMENT_TIMEOUTS = StatementTimeouts()
"""The service's own: :data:`LOCK_TIMEOUT_S` and :data:`STATEMENT_TIMEOUT_S`."""


def migration_settings() -> tuple[str, ...]:
    """The statements that give the migrations' transaction its own limits (see
    :data:`MIGRATION_LOCK_TIMEOUT_S`)."""
    return (
        f"SET LOCAL lock_timeout = {_ms(MIGRATION_LOCK_TIMEOUT_S)}",
        "SET LOCAL statement_timeout = 0",
    )


def _ms(seconds: float) -> int:
    """PostgreSQL's milliseconds, at least 1 (0 would mean no limit at all)."""
    return max(1, round(seconds * 1000))


def _url_options(url: str) -> str:
    """The ``options`` libpq would have used for ``url`` without ours: the URL's own, else
    ``PGOPTIONS`` from the environment (which libpq reads only when none is passed, so the
    one passed here would silently drop it: a ``search_path`` set there, and the store
    migrated an empty schema into ``public``)."""
    import psycopg.conninfo  # here: a service on a SQLite file never loads psycopg

    given = psycopg.conninfo.conninfo_to_dict(url).get("options")
    return str(given or os.environ.get("PGOPTIONS") or "").strip()


LOCK_NOT_AVAILABLE = "55P03"
"""The SQLSTATE of a statement ended at its ``lock_timeout`` (psycopg's ``LockNotAvailable``)."""
DEADLOCK_DETECTED = "40P01"
"""The SQLSTATE of a statement the server ended to break a deadlock (``DeadlockDetected``):
another session's transaction and this one each waited on the other's lock."""
QUERY_CANCELED = "57014"
"""The SQLSTATE of a statement ended at its ``statement_timeout``, or cancelled by someone
(``pg_cancel_backend``): psycopg's ``QueryCanceled``."""


def why_ended(exc: BaseException, timeouts: StatementTimeouts) -> str:
    """What a person reads after the server's words when it ended a statement of the store's
    for taking too long (empty for any other error): the server says only "canceling
    statement due to lock timeout", not whose lock or what to do."""
    code = getattr(exc, "sqlstate", None)
    if code == LOCK_NOT_AVAILABLE:
        return (
            f" (waited {timeouts.lock_s:g} s for a lock another session holds: an ALTER "
            "TABLE, VACUUM FULL, LOCK TABLE or REINDEX in psql, a migration, a transaction "
            "left open; pg_locks and pg_stat_activity name it. Tried again until it is gone)"
        )
    if code == QUERY_CANCELED:
        return (
            f" (a statement ran past {timeouts.statement_s:g} s, or was cancelled on the "
            "server: a server overloaded or waiting on its disk. Tried again)"
        )
    return ""
