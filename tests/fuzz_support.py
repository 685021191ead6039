"""Hypothesis for the property tests of bad input (``tests/test_fuzz_*.py``, safety rule 6).

Deterministic and small: ``derandomize`` draws the same examples every run (a failure is
reproduced by running the test again, with the example printed), no example database is
written, and each test's example count is chosen to keep all of them within seconds on two
cores. Hypothesis keeps caches (its Unicode tables, the constants it reads from our modules)
in a storage directory, by default ``.hypothesis`` in the working directory: it is put in the
system's temporary directory instead, so nothing is written into the tree.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"retroguard-hypothesis-{os.getuid()}")


def fuzz(examples: int) -> settings:
    """The settings of a property: ``examples`` examples, always the same ones; no deadline
    and no health check on time (a loaded machine is slow, not wrong)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


FIELDS = (
    "id", "plan", "name", "intervals", "direction", "minutes", "speed", "progression",
    "stages", "stage", "action", "by", "walker", "event_id", "incident", "via", "schema",
    "device_id", "seq", "type", "severity", "state", "reason", "wall_time", "figures",
    "imu_window", "columns", "rows", "started_wall", "ended_wall", "week", "open",
)  # fmt: skip
"""Field names of our messages: an odd value under a name the reader knows goes deeper."""

ZONES = (
    None,
    dt.UTC,
    dt.timezone(dt.timedelta(hours=14)),
    dt.timezone(dt.timedelta(hours=-12)),
    dt.timezone(dt.timedelta(hours=23, minutes=59)),
)

wall_times = st.one_of(
    st.builds(
        lambda moment, zone, spec: moment.replace(tzinfo=zone).isoformat(timespec=spec),
        st.datetimes(),
        st.sampled_from(ZONES),
        st.sampled_from(("auto", "seconds", "milliseconds")),
    ),
    st.sampled_from(
        (
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-12:00",
            "2026-W10",
            "9999-12-31",
        )
    ),
)
"""ISO 8601 times anywhere in the calendar, its ends too, naive or at any offset."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=40),
    wall_times,
    st.sampled_from((10**400, 2**63, -(2**63) - 1, 1e308, -0.0, "", "\u0000", "x" * 5000)),
)
"""Every JSON scalar (``NaN`` and infinities too, which ``json.dumps`` writes), huge, tiny,
odd text (no lone surrogate: :mod:`core.strict_json` refuses their escapes before a reader)."""

json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def mutated(value: Any) -> st.SearchStrategy[Any]:
    """``value`` as it is, replaced by any JSON value, or changed inside: a dict's fields each
    kept, dropped or mutated, with a field or two added; a list's items mutated, its length
    changed. What a valid message looks like after a bug or an attacker."""
    options: list[st.SearchStrategy[Any]] = [st.just(value), json_values]
    if isinstance(value, dict) and value:
        fields = st.fixed_dictionaries(
            {}, optional={key: st.just(item) | mutated(item) for key, item in value.items()}
        )
        extra = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=2)
        options.append(st.builds(lambda kept, added: {**kept, **added}, fields, extra))
        options.append(st.fixed_dictionaries({k: mutated(v) for k, v in value.items()}))
    if isinstance(value, list) and value:
        options.append(st.lists(mutated(value[0]), max_size=len(value) + 2))
    return st.one_of(options)


def as_json(value: Any) -> bytes:
    """``value`` as a producer writes it (``json.dumps``, which also writes NaN and Infinity)."""
    return json.dumps(value).encode()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@contextmanager
def logged_errors() -> Iterator[list[str]]:
    """The ERROR records (tracebacks: a crash caught and logged) logged inside the block.
    ``caplog`` is per test function; a property runs many examples in one."""
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
