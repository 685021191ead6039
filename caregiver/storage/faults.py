"""The one error the rest of the service sees when the database cannot do its job."""

from __future__ import annotations


class StorageFault(Exception):
    """The database could not commit or read (disk full, I/O error, a damaged file).

    Ingest keeps the message un-acknowledged (the broker holds it) and tries
    again; nothing above the storage package knows which engine failed.
    """
