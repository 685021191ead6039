"""The journal's view of a failure that repeats at every wake (firmware.failure_log)."""

from __future__ import annotations

import logging

import pytest

from firmware.failure_log import REPEAT_REPORT_S, RepeatedFailureLog

LOGGER = "tests.failure_log"


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, bool]]:
    return [(r.getMessage(), r.exc_info is not None) for r in caplog.records]


@pytest.fixture
def failures(caplog: pytest.LogCaptureFixture) -> RepeatedFailureLog:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return RepeatedFailureLog("detector", logging.getLogger(LOGGER))


def test_the_same_failure_is_one_traceback_then_a_count_a_minute(
    failures: RepeatedFailureLog, caplog: pytest.LogCaptureFixture
) -> None:
    wakes_a_second = 100
    for wake in range(int(2.5 * REPEAT_REPORT_S * wakes_a_second)):
        failures.failed(ZeroDivisionError("bug"), wake / wakes_a_second)
    assert failures.failing
    counted = "detector still failing: ZeroDivisionError: bug ({} more times)"
    per_report = int(REPEAT_REPORT_S * wakes_a_second)
    assert _lines(caplog) == [
        ("detector failed", True),
        (counted.format(per_report), False),
        (counted.format(per_report), False),
    ]


def test_another_failure_gets_its_own_traceback_after_the_count_of_the_last(
    failures: RepeatedFailureLog, caplog: pytest.LogCaptureFixture
) -> None:
    for t in range(3):
        failures.failed(ZeroDivisionError("bug"), t / 100)
    failures.failed(ValueError("other"), 0.03)
    assert _lines(caplog) == [
        ("detector failed", True),
        (
            "detector still failing: ZeroDivisionError: bug (2 more times)",
            False,
        ),
        ("detector failed", True),
    ]
    assert caplog.records[-1].exc_info is not None
    assert caplog.records[-1].exc_info[0] is ValueError


def test_working_again_is_said_once_with_how_often_it_failed(
    failures: RepeatedFailureLog, caplog: pytest.LogCaptureFixture
) -> None:
    failures.worked()  # never failed: nothing to say
    for t in range(5):
        failures.failed(ZeroDivisionError("bug"), t / 100)
    failures.worked()
    failures.worked()
    assert not failures.failing
    failures.failed(ZeroDivisionError("bug"), 1.0)  # the same failure, after working: new again
    assert _lines(caplog) == [
        ("detector failed", True),
        ("detector works again, after failing 5 times", False),
        ("detector failed", True),
    ]


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no message")


def test_a_failure_whose_message_cannot_be_read_is_logged_and_counted_without_raising(
    failures: RepeatedFailureLog, caplog: pytest.LogCaptureFixture
) -> None:
    """``failed`` runs in the caller's ``except`` block: raising there (reading the message of
    an exception whose ``__str__`` is broken) would turn a handled fault into a crash."""
    for wake in range(int(REPEAT_REPORT_S * 100) + 1):
        failures.failed(_Unprintable(), wake / 100)
    assert failures.failing
    assert [line for line, _ in _lines(caplog)] == [
        "detector failed",
        "detector still failing: _Unprintable: (its message could not be read: ValueError)"
        f" ({int(REPEAT_REPORT_S * 100)} more times)",
    ]
