"""core.sqlite_check: the time budget of ``quick_check`` holds on the SQLite the Pi runs.

Real SQLite files. The walk of every b-tree's pages is one virtual-machine step, inside
which SQLite before 3.43 (Raspberry Pi OS bookworm's 3.40.1, this venv's too) calls no
progress handler: a budget kept by the progress handler alone was not kept there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.sqlite_check import quick_check


def _file_of_few_rows_and_many_pages(path: Path) -> sqlite3.Connection:
    """About 100 MB in 2000 rows (each its own chain of overflow pages): few steps for the
    virtual machine, many pages for the one step that walks them."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("CREATE TABLE t(b)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
        "INSERT INTO t(b) SELECT randomblob(50000) FROM n"
    )
    return conn


def test_a_check_whose_time_is_spent_stops_in_the_walk_of_the_pages(tmp_path: Path) -> None:
    """The budget is spent from the clock's second look on: the check stops, not finished
    (before: it read the whole file, finished, its budget spent)."""
    conn = _file_of_few_rows_and_many_pages(tmp_path / "big.db")
    looks = iter([0.0])
    checked = quick_check(conn, within_s=1.0, monotonic=lambda: next(looks, 1e9))
    assert not checked.finished and checked.findings is None
    # the connection is left as it was: nothing interrupts its next statement
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2000,)
    assert quick_check(conn, within_s=600.0).finished


def test_a_check_within_its_time_reads_the_whole_file(tmp_path: Path) -> None:
    conn = _file_of_few_rows_and_many_pages(tmp_path / "big.db")
    checked = quick_check(conn, within_s=600.0)
    assert checked.finished and checked.findings is None
