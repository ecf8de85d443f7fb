"""How the server's log lines look: time and logger name on every line, as text or as JSON.

``FLAGGERY_LOG_FORMAT=text`` (the default)::

    2026-12-07T14:03:07.412Z INFO flaggery.live.evaluator: Connected at revision 41 revision=41

``FLAGGERY_LOG_FORMAT=json``, one object a line, for log shippers::

    {"time": "2026-12-07T14:03:07.412Z", "level": "INFO", "logger": "flaggery.live.evaluator",
     "message": "Connected at revision 41", "revision": 41}

The structured fields (`FIELDS`: ``revision``, ``route``, ``actor``) are given where a line
has them, with ``logging``'s ``extra``: ``log.info("...", extra={"revision": 41})``. uvicorn's
access lines get ``route``, ``method`` and ``status`` from their arguments. A traceback goes in
``exception`` (JSON) or after the line (text). Times are UTC, to the millisecond.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["FIELDS", "JsonFormatter", "TextFormatter", "log_config"]

FIELDS = ("revision", "route", "actor")
"""The structured fields a log line may carry (as ``extra``), in the order they are shown."""

_ACCESS_LOGGER = "uvicorn.access"
_ACCESS_ARGUMENTS = 5  # uvicorn's: client address, method, path, HTTP version, status


def _utc_time(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of `record`: those given as ``extra``, and an access line's
    method, route and status."""
    found = {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
    args = record.args
    if record.name == _ACCESS_LOGGER and isinstance(args, tuple) and len(args) == _ACCESS_ARGUMENTS:
        _, method, path, _, status = args
        found.update(method=method, route=path, status=status)
    return found


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message> key=value...`` (the `FIELDS` given), then any
    traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        # An access line's method, route and status are in its message already.
        given = [name for name in FIELDS if hasattr(record, name)]
        extra = " ".join(f"{name}={getattr(record, name)}" for name in given)
        if extra:
            line = f"{line} {extra}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the structured fields, and the
    traceback as ``exception``. Values JSON cannot hold are written as their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_config(level: str, log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: flaggery's and uvicorn's loggers on one
    handler (standard error) with the chosen formatter. `level`: a FLAGGERY_LOG_LEVEL
    (``trace`` is uvicorn's; flaggery logs it as DEBUG); `log_format`: ``text`` or ``json``."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    python_level = "DEBUG" if level == "trace" else level.upper()
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "flaggery",
        "stream": "ext://sys.stderr",
    }
    logger = {"handlers": ["default"], "level": python_level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"flaggery": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"default": handler},
        "loggers": {
            "flaggery": logger,
            "uvicorn": {**logger, "level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {**logger, "level": "INFO"},
        },
    }
