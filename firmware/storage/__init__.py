"""The device database: the one owner of its schema and of every SQL statement against it.

One SQLite file per device (``storage.database``). Other modules go through
these, never through SQL of their own:

* :mod:`~firmware.storage.schema` — the tables, versioned by ``PRAGMA user_version``,
  and the ordered migrations that bring an older file up to date;
* :mod:`~firmware.storage.database` — :func:`connect` (WAL, ``synchronous=FULL``,
  the schema upgraded), :func:`transaction`, and the :class:`Database` the stores
  run their SQL through (:class:`FileDatabase`: one file);
* :mod:`~firmware.storage.events` — :class:`EventStore`, the event log;
* :mod:`~firmware.storage.outbox` — :class:`Outbox`, the MQTT outbox and the
  caregivers' acknowledgements;
* :mod:`~firmware.storage.sessions` — the guided-session log;
* :mod:`~firmware.storage.plans` — the plans a physio assigned (the newest is in force);
* :mod:`~firmware.storage.runs` — the run log (a start after an unclean stop says so);
* :mod:`~firmware.storage.errors` — :class:`SchemaError`, why a file was refused;
* :mod:`~firmware.storage.faults` — damage (move the file aside) told from a disk
  that refuses writes (wait, keep records in memory);
* :mod:`~firmware.storage.damage` — opening a file whatever its state: a damaged
  one is moved aside and a new one started;
* :mod:`~firmware.storage.fallback` — the courier's :class:`FallbackDatabase`:
  the file while it takes writes, memory while it does not;
* :mod:`~firmware.storage.transfer` — copying records into memory and back.
"""
