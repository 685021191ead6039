"""Why the device database was refused; its own module so the CLI can catch it without sqlite3."""

from __future__ import annotations


class SchemaError(Exception):
    """The file is not a device database this code may use; nothing in it was changed."""
