"""The one error the rest of the service sees when the database cannot do its job."""

from __future__ import annotations


class StorageFault(Exception):
    """The database could not commit or read (disk full, I/O error, a damaged file).

    Ingest keeps the message un-acknowledged (the broker holds it) and tries
    again; nothing above the storage package knows which engine failed.

    ``refused_data``: the database answered, refusing the data itself (SQLSTATE class 22: a
    number out of range, an invalid value). In a batch it cannot be told which message
    brought it (PostgreSQL's pipeline reports an error at its next sync), so the batch is
    held like any fault; a message stored alone that meets it would meet it on every try,
    and ingest lets it go instead of holding every message behind it.

    ``lasting``: what no restart cures (a damaged file, not an SQLite file), found opening
    the database or met by a statement later (a damaged page past what the check at open
    read, or one that broke since): a person must act. The command line exits 2 for it, as
    for a config or schema error, and the unit's ``RestartPreventExitStatus=2`` stops systemd
    restarting the service every 2 s to say it again; a server down or a file locked exits 1
    and is retried. A running service that meets it stays up and says it
    (:attr:`~caregiver.storage.Store.damage`).

    ``locked``: another session held a lock the statement needed past the wait for it
    (SQLite's busy timeout, PostgreSQL's lock timeout, or a deadlock it broke): it passes,
    and the same statement goes through once it has. Ingest tries a side message refused so
    again rather than let it go as if its table refused it
    (:meth:`caregiver.ingest.Ingestor._side_fault`).
    """

    def __init__(
        self,
        message: str,
        *,
        refused_data: bool = False,
        lasting: bool = False,
        locked: bool = False,
    ) -> None:
        super().__init__(message)
        self.refused_data = refused_data
        self.lasting = lasting
        self.locked = locked
