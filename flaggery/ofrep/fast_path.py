"""OFREP's evaluations without ASGI: what flaggery's HTTP protocol (`flaggery.http.protocol`)
asks before it gives an OFREP ``POST`` to the app.

When a request's headers are complete, `OfrepFastPath.route` says whether the protocol may
collect the body itself (an evaluation ``POST`` whose answer depends on nothing but its body
and the headers seen here; `route` reads the ``If-None-Match`` lines in the same pass over the
headers); once the body is whole, `OfrepFastPath.respond` writes the answer `OfrepApp.answer`
gives, the one function the ASGI app answers with too (`OfrepApp.evaluation`), so both paths
send the same bytes by construction. It leaves to the app what needs more than that:

- a client token to check (when client tokens are configured and the request does not carry a
  valid client token: the app refuses and counts failed attempts), a Host the open loopback
  server refuses, a browser's ``Origin`` when CORS is on (the CORS headers);
- ``Expect: 100-continue`` (the app's first read sends the interim 100), a ``Content-Length``
  over the bound or not plain digits, a ``Transfer-Encoding`` other than ``chunked`` (the app's
  413 and the parser's 400 decide);
- and anything `respond` is not sure of: an unexpected exception (the app logs it and answers
  500).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flaggery.access import HostRule, Keyring
from flaggery.ofrep.app import (
    BULK_PATH,
    MAX_BODY_BYTES,
    SINGLE_PREFIX,
    SINGLE_ROUTE,
    Headers,
    OfrepApp,
    Recorder,
)

__all__ = ["OfrepFastPath", "Route"]

Route = tuple[str, str | None, bytes | None]
"""(route template, flag key or None for the bulk route, every ``If-None-Match`` line of the
request as one list or None) of an evaluation request."""

_LIMIT_DIGITS = len(str(MAX_BODY_BYTES))
_SINGLE_START = len(SINGLE_PREFIX)


class OfrepFastPath:
    """Answers OFREP evaluation POSTs for flaggery's protocol, or declines (the app answers)."""

    def __init__(
        self, app: OfrepApp, keyring: Keyring, cors: bool, hosts: HostRule | None = None
    ) -> None:
        self._app = app
        self._keyring = keyring if keyring.clients_required else None
        self._hosts = hosts
        self._cors = cors
        # What CORSMiddleware adds to an answer to a request without Origin.
        self._vary: Headers = [(b"vary", b"Origin")] if cors else []
        self._tallies: dict[tuple[str, int], Recorder] = {}
        self._metrics = app.tally(SINGLE_ROUTE, 200) is not None

    # The hot path, inlined: one pass over the headers, each refusal one test.
    def route(self, path: str, headers: Headers) -> Route | None:  # noqa: C901
        """The route of a ``POST`` of `path` (percent-decoded, no query string) whose body the
        protocol may read and hand to `respond`; None to leave the request to the app."""
        if path == BULK_PATH:
            key = None
        elif path.startswith(SINGLE_PREFIX):
            key = path[_SINGLE_START:]
        else:
            return None
        hosts = self._hosts  # an open loopback server's Host rule (flaggery.access.hosts)
        validators = None  # every If-None-Match line, as one list (RFC 9110)
        for name, value in headers:
            if name == b"content-length":
                # The app refuses a declared length over the bound before reading the body.
                if not value.isdigit() or len(value) > _LIMIT_DIGITS or int(value) > MAX_BODY_BYTES:
                    return None
            elif name == b"host":
                if hosts is not None and not hosts.allows(value):
                    return None
            elif name == b"if-none-match":
                validators = value if validators is None else validators + b", " + value
            elif name == b"transfer-encoding":
                if value != b"chunked":
                    return None
            elif name == b"expect" or (name == b"origin" and self._cors):
                return None
        if self._keyring is not None and not self._keyring.serves_flags(headers):
            return None
        if key is None:
            return BULK_PATH, None, validators
        return SINGLE_ROUTE, key, None

    def respond(
        self,
        route: Route,
        body: bytes,
        write: Callable[[int, Headers, bytes], None],
    ) -> bool:
        """Answer the request `route` accepted, whose whole `body` was read, through
        ``write(status, headers, body)``; False (nothing written) to leave it to the app."""
        metrics = self._metrics
        started = time.perf_counter() if metrics else 0.0
        try:
            status, answer_headers, answer = self._app.answer(route[1], route[2], body)
        except Exception:  # the app logs it and answers 500
            return False
        write(status, answer_headers + self._vary if self._vary else answer_headers, answer)
        if metrics:
            tally = self._tallies.get((route[0], status)) or self._tally(route[0], status)
            tally.record(time.perf_counter() - started)
        return True

    def _tally(self, route: str, status: int) -> Recorder:
        tally = self._tallies.get((route, status))
        if tally is None:
            tally = self._app.tally(route, status)
            assert tally is not None  # with metrics
            self._tallies[route, status] = tally
        return tally
