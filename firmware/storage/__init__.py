"""The device database: the one owner of its schema and of every SQL statement against it.

One SQLite file per device (``storage.database``). Other modules go through
these, never through SQL of their own:

* :mod:`~firmware.storage.schema` — the tables, versioned by ``PRAGMA user_version``,
  and the ordered migrations that bring an older file up to date;
* :mod:`~firmware.storage.database` — :func:`connect` (WAL, ``synchronous=FULL``,
  the schema upgraded) and :func:`transaction`;
* :mod:`~firmware.storage.events` — :class:`EventStore`, the event log;
* :mod:`~firmware.storage.outbox` — :class:`Outbox`, the MQTT outbox and the
  caregivers' acknowledgements;
* :mod:`~firmware.storage.sessions` — the guided-session log;
* :mod:`~firmware.storage.errors` — :class:`SchemaError`, why a file was refused.
"""
