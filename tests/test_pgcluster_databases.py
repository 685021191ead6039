"""The suite's PostgreSQL cluster drops each test's databases after it (tests/conftest.py).

A suite's few hundred databases kept to the end made each xdist worker's last teardown 1-2
minutes of deleting files on a loaded two-core machine."""

from __future__ import annotations

import psycopg
import pytest

from tools.pgcluster import PostgresCluster, postgres_available


def _names(cluster: PostgresCluster) -> set[str]:
    with psycopg.connect(cluster.url(), autocommit=True) as db:
        rows = db.execute("SELECT datname FROM pg_database").fetchall()
    return {str(row[0]) for row in rows}


def test_the_databases_a_test_made_are_dropped_and_only_those(
    postgres_cluster: PostgresCluster,
) -> None:
    before = _names(postgres_cluster)
    made = [postgres_cluster.new_database().rsplit("/", 1)[1] for _ in range(2)]
    with psycopg.connect(postgres_cluster.url(made[0]), autocommit=True) as still_open:
        still_open.execute("SELECT 1")
        postgres_cluster.drop_new_databases()  # FORCE: an open connection does not stop it
    assert _names(postgres_cluster) == before
    assert not set(made) & _names(postgres_cluster)
    postgres_cluster.drop_new_databases()  # nothing left to drop: nothing happens
    assert _names(postgres_cluster) == before


def test_a_stopped_cluster_s_databases_are_left_for_its_cleanup() -> None:
    """A test that stops the server (PostgreSQL going down under the caregiver service) ends
    with its databases undropped: the drop after it is no error, and does not start the
    server again; ``cleanup`` deletes them with the rest. (Mutation, mut38: a drop tried on
    the stopped server.)"""
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.new_database()
        cluster.stop()
        cluster.drop_new_databases()
        assert not cluster.running
    finally:
        cluster.cleanup()


def test_a_copy_has_the_template_s_tables_and_rows_and_a_kept_template_is_not_dropped(
    postgres_cluster: PostgresCluster,
) -> None:
    """The suite's ``caregiver_db`` copies a database the store migrated once per session
    (tests/conftest.py): the copy has what the template has, each copy is a database of its
    own, and the template outlives the drop after each test."""
    template_url = postgres_cluster.new_database("template", kept=True)
    template = template_url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(template_url, autocommit=True) as db:
            db.execute("CREATE TABLE kept (id integer PRIMARY KEY)")
            db.execute("INSERT INTO kept VALUES (7)")
        first, second = (postgres_cluster.new_database(copy_of=template) for _ in range(2))
        with psycopg.connect(first, autocommit=True) as db:
            assert db.execute("SELECT id FROM kept").fetchall() == [(7,)]
            db.execute("INSERT INTO kept VALUES (8)")
        with psycopg.connect(second, autocommit=True) as db:  # the first's row is its own
            assert db.execute("SELECT id FROM kept").fetchall() == [(7,)]
        postgres_cluster.drop_new_databases()
        names = _names(postgres_cluster)
        assert template in names
        assert not {first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]} & names
    finally:
        with psycopg.connect(postgres_cluster.url(), autocommit=True) as db:
            db.execute(f'DROP DATABASE "{template}"'.encode())
