"""FailureLog: a retried failure is logged when it starts and when its reason changes, at
debug while it repeats, and its end once at INFO."""

from __future__ import annotations

import logging

import pytest

from flaggery.errors import UpstreamRefused, UpstreamUnavailable
from flaggery.live.failure_log import FailureLog, level_of

log = logging.getLogger("flaggery.test.failures")


def test_repeats_go_to_debug_and_the_end_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    failures = FailureLog(log)
    failures.recovered("never failed")  # nothing to recover from: silent
    for _ in range(3):
        failures.failed("refused", "down: %s", "refused")
    failures.failed("timeout", "down: %s", "timeout", level=logging.ERROR)
    failures.failed("timeout", "down: %s", "timeout", level=logging.ERROR)
    failures.recovered("back at %s", 7)
    failures.recovered("back at %s", 8)
    failures.failed("refused", "down: %s", "refused")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "down: refused"),
        ("DEBUG", "down: refused"),
        ("DEBUG", "down: refused"),
        ("ERROR", "down: timeout"),
        ("DEBUG", "down: timeout"),
        ("INFO", "back at 7"),
        ("WARNING", "down: refused"),  # a new failure after the recovery is said again
    ]
    assert failures.reason == "refused"


def test_a_refused_token_is_an_error_and_an_outage_a_warning() -> None:
    assert level_of(UpstreamRefused("401")) == logging.ERROR
    assert level_of(UpstreamUnavailable("down")) == logging.WARNING
    assert level_of(OSError("refused")) == logging.WARNING
