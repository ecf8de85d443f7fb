"""The HTTP/1.1 protocol flaggery serves with: uvicorn's httptools protocol plus the read
deadline (`flaggery.http.deadline`), the flags route answered without ASGI, a timer on every
idle connection, and close-delimited bodies for HTTP/1.0.

**The flags route.** Through ASGI, a request costs uvicorn a scope, a request cycle with its
``asyncio.Event``, a task, and two ``send`` calls that check every header with regular
expressions: about four fifths of a flags request's CPU time (``bench/flags_path_bench.py
--profile``), against a sixth for flaggery's own work. So when the headers of a plain ``GET``
without a body are complete, the protocol asks the app's `FlagsFastPath` for the answer and,
if it gives one (a 200 or 304 from the snapshot), holds it until httptools has judged the
request complete and well-formed, then writes the status line, uvicorn's default headers
(``date``, ``server``), the fast path's headers and the body, in one write, exactly as the
ASGI path would have sent them; ``GET /v1/keys/{key}/flags`` likewise, its path
percent-decoded as uvicorn decodes it. A request the parser rejects after its headers (a
``Transfer-Encoding`` it does not accept, a bad chunk) therefore gets uvicorn's 400 alone, as
on the ASGI path, never a 200 and then a 400. Everything else goes through ASGI: other
methods and routes, query strings and other percent-encoded paths, HEAD, a request with a body
(``Transfer-Encoding``, or a ``Content-Length`` other than 0: ASGI answers it before its body
arrives), every error, a request pipelined behind one still in flight, and a connection whose
client is not reading (the ASGI path waits for the socket to drain; a direct write could not).
Keep-alive follows uvicorn's rule (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 closes).
A request ASGI answered before its body arrived, whose body the parser then rejects, is closed
without uvicorn's 400: one request, one response, on both paths.

**OFREP.** An evaluation ``POST`` (``/ofrep/v1/evaluate/flags`` and ``.../{key}``) that the
app's `OfrepFastPath` accepts from its head is read here, its body (``Content-Length`` or
chunked, in any number of reads) kept up to OFREP's bound, and answered once the parser has
judged it whole, with the bytes `OfrepApp.answer` gives (the ASGI app's own answer). A
body that passes the bound, a client that stops reading, or an answer the fast path declines
hands the request to ASGI after all: its head and the body read so far are given to uvicorn
as if they had just been parsed, and the rest follows as for any request.

**Timers.** A connection always has one: the read deadline while a request is being read, the
response's own progress while one is being sent, and otherwise the keep-alive timeout, also
when a request's last byte arrives after its response (uvicorn arms keep-alive only when a
response completes, and cancels it on every read).

**HTTP/1.0.** uvicorn frames a response without ``Content-Length`` (the event streams) as
chunked, which HTTP/1.0 does not have; here such a body is sent as is and ended by closing the
connection (RFC 9112, 6.3), as h11 does.

**uvicorn and httptools internals used** (the upgrade checklist; `flaggery.http.protocol_guard`
checks them at start and falls back to `DeadlineProtocol` if one is missing or behaves
differently; uvicorn is pinned to the minor version tested in ``pyproject.toml``):

- ``uvicorn.protocols.http.httptools_impl``: ``HttpToolsProtocol`` and its constructor
  ``(config, server_state, app_state, _loop)``, ``STATUS_LINE``, ``RequestResponseCycle``;
- ``HttpToolsProtocol`` attributes ``transport``, ``loop``, ``app``, ``access_log``,
  ``root_path``, ``parser``, ``url``,
  ``headers``, ``cycle``, ``flow``, ``server_state``, ``timeout_keep_alive``,
  ``timeout_keep_alive_task``, and ``limit_concurrency``, ``connections`` and ``tasks`` (its
  admission check, repeated before a direct answer); methods ``_start_asgi_task(cycle, app)``
  (overridden: the one place a request's ASGI task starts, pipelined or not),
  ``_unset_keepalive_if_required()``, ``timeout_keep_alive_handler()``,
  ``send_400_response(msg)`` (overridden: a request already answered is closed instead); and
  what ``on_headers_complete``, ``on_body`` and
  ``on_message_complete`` do, which a directly answered request skips (a new admission check
  added there, beside ``limit_concurrency``, would be bypassed: the guard compares their
  source with the versions tested);
- ``RequestResponseCycle`` attributes ``scope``, ``transport``, ``flow``, ``keep_alive``,
  ``response_started``, ``response_complete``, ``disconnected``, ``chunked_encoding``,
  ``message_event``, ``on_response``, and the framing ``send`` writes;
- ``ServerState.default_headers`` (a new list when the date changes, never one changed in
  place: `_encoded_defaults` keeps the encoding until then) and ``total_requests``;
  ``FlowControl.write_paused`` and ``drain()``;
- ``uvicorn.config.Config`` and ``ServerState()``, which the start-up probe constructs;
- httptools' ``HttpRequestParser.get_method()``, ``get_http_version()``,
  ``should_keep_alive()``, ``should_upgrade()``, and the order of its callbacks (the message is
  complete only after every check on the head and body).
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from flaggery.http.close_delimited import close_delimited
from flaggery.http.deadline import MAX_HEAD_BYTES, DeadlineProtocol
from flaggery.http.serving import KEY_PREFIX, FlagsFastPath, Headers
from flaggery.ofrep.app import BULK_PATH as OFREP_BULK_PATH
from flaggery.ofrep.app import MAX_BODY_BYTES as OFREP_MAX_BODY_BYTES
from flaggery.ofrep.fast_path import OfrepFastPath, Route

__all__ = ["MAX_HEAD_BYTES", "ReadTimeoutProtocol"]

# How many ASGI wrappers (uvicorn's proxy headers, message logger, ...) to look through for
# flaggery's app.
_WRAPPERS = 8
_OFREP = OFREP_BULK_PATH.encode()
FastPath = TypeVar("FastPath", FlagsFastPath, OfrepFastPath)


class ReadTimeoutProtocol(DeadlineProtocol):
    """flaggery's protocol: `DeadlineProtocol` and everything in this module's docstring."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, read_timeout=read_timeout, **kwargs)
        # Access logs and a root path are ASGI's business (the log line, the path's prefix).
        direct = not self.access_log and not self.root_path
        self._flags = _fast_path(self.app, "fast_path", FlagsFastPath) if direct else None
        self._ofrep = _fast_path(self.app, "ofrep_fast_path", OfrepFastPath) if direct else None
        self._answer: bytes | None = None  # the direct answer, held until its request is whole
        # A directly answered OFREP POST being read: its route and the body so far.
        self._ofrep_route: Route | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._keep_alive = True  # the current request's, for `_hold`
        self._defaults: list[tuple[bytes, bytes]] | None = None  # see `_encoded_defaults`
        self._defaults_bytes = b""
        # The cycle whose ASGI task runs: uvicorn's `self.cycle` is the newest one, which is a
        # pipelined request queued behind it when there is one.
        self._running: RequestResponseCycle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        running = self._running
        if running is not None and not running.response_complete:
            # uvicorn marks only `self.cycle` disconnected: a response waiting for the socket
            # to drain behind it would then write to a closed transport (an error per client
            # that pipelines without reading and hangs up).
            running.disconnected = True
            running.message_event.set()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            not self._reading
            and self.timeout_keep_alive_task is None
            and not self.transport.is_closing()
            and (self.cycle is None or self.cycle.response_complete)
        ):
            # Idle, answered (perhaps before its last byte arrived), and uvicorn's read just
            # cancelled the keep-alive timer: without this the connection would have none.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._prepare(cycle)
        super()._start_asgi_task(cycle, app)

    def _prepare(self, cycle: RequestResponseCycle) -> None:
        """What flaggery adds to a request cycle before its ASGI task starts."""
        self._running = cycle
        if cycle.scope["http_version"] == "1.0":
            close_delimited(cycle)

    def on_message_begin(self) -> None:
        # A request pipelined behind a directly answered one: its keep-alive timer must not
        # cut this one off while the app works on it.
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._answer = None
        self._ofrep_route = None

    def on_headers_complete(self) -> None:
        if self._direct():
            self._in_head = False
        else:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._ofrep_route is not None:
            self._body.append(body)
            self._body_size += len(body)
            if self._body_size > OFREP_MAX_BODY_BYTES:
                self._to_asgi()  # the app answers 413
        elif self._answer is None:  # a directly answered GET has no body: see `_direct`
            super().on_body(body)

    def on_message_complete(self) -> None:
        route = self._ofrep_route
        if route is not None:
            # The OFREP POST being read is whole: hold its direct answer, or hand it to ASGI.
            chunks = self._body
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one read: no copy
            ofrep = self._ofrep
            assert ofrep is not None
            if self.flow.write_paused or not ofrep.respond(route, body, self._hold):
                self._to_asgi()
            self._ofrep_route, self._body = None, []
        answer = self._answer
        if answer is None:
            super().on_message_complete()
            return
        self._request_read()
        self._answer = None
        self.transport.write(answer)
        self.server_state.total_requests += 1
        if not self._keep_alive:
            self.transport.close()

    def _direct(self) -> bool:
        """Prepare the direct answer of a plain bodiless GET of the flags route, or start
        reading the body of an OFREP evaluation POST to answer directly, or return False to
        leave the request to ASGI."""
        flags, parser, cycle = self._flags, self.parser, self.cycle
        method = parser.get_method()
        if method == b"POST" and self._ofrep is not None:
            return self._read_ofrep()
        if (
            flags is None
            or method != b"GET"
            or (cycle is not None and not cycle.response_complete)  # pipelined behind it
            or self.flow.write_paused
            or parser.should_upgrade()
            or (self.limit_concurrency is not None and self._over_capacity())
        ):
            return False
        url = self.url
        if b"?" in url or b"#" in url or not url.isascii() or not _bodiless(self.headers):
            return False  # uvicorn's URL parsing decides what the path is
        path = url.decode("ascii")
        if "%" in path:
            if not path.startswith(KEY_PREFIX):
                return False
            try:  # a percent-encoded targeting key, which must be UTF-8
                path = unquote(path, errors="strict")
            except UnicodeDecodeError:
                return False  # the router refuses it (flaggery.http.endpoint)
        self._keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return flags.respond(path, self.headers, self._hold)

    def _read_ofrep(self) -> bool:
        """Start reading an OFREP evaluation POST's body to answer it directly
        (`flaggery.ofrep.fast_path`), or return False to leave the request to ASGI."""
        ofrep, parser, cycle, url = self._ofrep, self.parser, self.cycle, self.url
        if (
            ofrep is None
            or not url.startswith(_OFREP)
            or (cycle is not None and not cycle.response_complete)  # pipelined behind it
            or self.flow.write_paused
            or parser.should_upgrade()
            or (self.limit_concurrency is not None and self._over_capacity())
            or b"?" in url
            or b"#" in url
            or not url.isascii()
        ):
            return False
        path = url.decode("ascii")
        if "%" in path:
            try:  # a percent-encoded flag key, which must be UTF-8
                path = unquote(path, errors="strict")
            except UnicodeDecodeError:
                return False  # OfrepApp refuses it (400 PARSE_ERROR)
        route = ofrep.route(path, self.headers)
        if route is None:
            return False
        self._keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        self._ofrep_route, self._body, self._body_size = route, [], 0
        return True

    def _to_asgi(self) -> None:
        """Hand the OFREP POST being read to ASGI after all: its head, and the body read so
        far, as uvicorn would have passed them on; the rest follows as for any request."""
        body = b"".join(self._body)
        self._ofrep_route, self._body = None, []
        DeadlineProtocol.on_headers_complete(self)
        if body:
            DeadlineProtocol.on_body(self, body)

    def _over_capacity(self) -> bool:
        """uvicorn's ``limit_concurrency`` admission check (in ``on_headers_complete``, which a
        direct answer skips): over it, uvicorn answers 503 through ASGI."""
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def _hold(self, status: int, headers: Headers, body: bytes) -> None:
        parts = [STATUS_LINE[status], self._encoded_defaults()]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if not self._keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self._answer = b"".join(parts)

    def _encoded_defaults(self) -> bytes:
        """uvicorn's default headers (``date``, ``server``) as header lines, encoded again only
        when uvicorn replaces the list (once a second, for the date): the list is kept, so
        the identity test cannot be fooled by a new list at a freed one's address."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            self._defaults = defaults
            self._defaults_bytes = b"".join(
                b"%s: %s\r\n" % (name, value) for name, value in defaults
            )
        return self._defaults_bytes

    def _responded(self) -> bool:
        if self._in_head or self._answer is not None or self._ofrep_route is not None:
            # headers incomplete, a direct answer not written yet, or an OFREP body being read
            return False
        cycle = self.cycle  # the request's own: it went through ASGI
        return cycle is not None and cycle.response_started

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser rejects; but a request already answered
        (before its malformed body arrived) is only closed: a 400 now would be a second,
        unrequested response, which a pooling proxy would hand to the next request."""
        if self._responded():
            self.transport.close()
        else:
            super().send_400_response(msg)

    def _default_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.server_state.default_headers)


def _bodiless(headers: Headers) -> bool:
    """Whether a request with these headers has no body (no ``Transfer-Encoding``, no
    ``Content-Length`` but 0), so its headers complete it."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return False
    return True


def _fast_path(app: Any, name: str, kind: type[FastPath]) -> FastPath | None:
    """flaggery's fast path of that attribute `name` and type, if `app` is flaggery's app or
    wraps it (uvicorn wraps the app in its middleware: ``.app`` is the wrapped one); None for
    any other app."""
    for _ in range(_WRAPPERS):
        fast_path = getattr(app, name, None)
        if isinstance(fast_path, kind):
            return fast_path
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
