"""Which OFREP requests flaggery's protocol answers itself, without ASGI, and that the rest
still reach the app: in process, with a transport that records writes (the test sees whether
the answer was written while the request was parsed, or only after the app's task ran). No
database: the answers come from a snapshot built from an engine state.
tests/http/test_fast_path_differential.py checks the bytes against the ASGI path's on real
servers."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, cast

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from flaggery.access import Keyring
from flaggery.engine import Snapshot, build_snapshot
from flaggery.engine.model import Feature, Group
from flaggery.engine.rules import parse_rule
from flaggery.http.protocol import ReadTimeoutProtocol
from flaggery.http.serving import FlagsFastPath
from flaggery.live.evaluator import Evaluator
from flaggery.ofrep.answers import SnapshotAnswers
from flaggery.ofrep.app import OfrepApp
from flaggery.ofrep.fast_path import OfrepFastPath
from flaggery.settings import Settings
from tests.engine.strategies import make_state, minute
from tests.http.test_protocol_direct import SNAPSHOT, UUID, RecordingTransport

SINGLE = b"POST /ofrep/v1/evaluate/flags/checkout HTTP/1.1\r\nHost: x\r\n"
BULK = b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\n"
BODY = b'{"context": {"targetingKey": "%s"}}' % UUID.encode()


class _Evaluator:
    """What OfrepApp reads of an Evaluator."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot, self.revision, self.stale = snapshot, snapshot.revision, False

    def now(self) -> datetime:
        return self.snapshot.built_at


class App:
    """flaggery's app as the protocol sees it: the fast paths, and OFREP through ASGI."""

    def __init__(self, keyring: Keyring) -> None:
        self.ofrep = OfrepApp(keyring)
        self.ofrep.evaluator = cast(Evaluator, _Evaluator(SNAPSHOT))
        self.fast_path = FlagsFastPath(None, keyring, cors=False)
        self.ofrep_fast_path = OfrepFastPath(self.ofrep, keyring, cors=False)
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.ofrep(scope, receive, send)


def _protocol(
    keyring: Keyring | None = None,
) -> tuple[ReadTimeoutProtocol, RecordingTransport, App]:
    app = App(keyring or Keyring(Settings()))
    config = Config(app, http="httptools", access_log=False, lifespan="off")
    config.load()
    protocol = ReadTimeoutProtocol(config, ServerState(), {}, read_timeout=60.0)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport, app


def _single_answer() -> bytes:
    evaluation = SNAPSHOT.evaluate(UUID)
    answer = SnapshotAnswers(SNAPSHOT, "/ofrep/v1/events").for_unit(evaluation).single("checkout")
    assert answer is not None
    return answer


@pytest.mark.parametrize(
    "parts",
    [
        [SINGLE + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY],
        # split across reads: in the head, between head and body, inside the body
        [SINGLE[:20], SINGLE[20:] + b"Content-Length: %d\r\n\r\n" % len(BODY), BODY[:9], BODY[9:]],
        # chunked, in two chunks and two reads
        [
            SINGLE + b"Transfer-Encoding: chunked\r\n\r\n5\r\n" + BODY[:5] + b"\r\n",
            b"%x\r\n" % (len(BODY) - 5) + BODY[5:] + b"\r\n0\r\n\r\n",
        ],
    ],
)
async def test_an_evaluation_post_is_answered_once_its_body_is_whole(parts: list[bytes]) -> None:
    protocol, transport, app = _protocol()
    for part in parts[:-1]:
        protocol.data_received(part)
        assert transport.writes == []  # not before the body is whole
    protocol.data_received(parts[-1])
    assert len(transport.writes) == 1 and app.calls == 0  # no task, no ASGI
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n" + _single_answer())
    assert not transport.closed and protocol.timeout_keep_alive_task is not None
    protocol.connection_lost(None)


async def test_a_bulk_post_with_a_matching_etag_is_a_direct_304() -> None:
    protocol, transport, app = _protocol()
    head = BULK + b"Content-Length: %d\r\n\r\n" % len(BODY)
    protocol.data_received(head + BODY)
    etag = transport.writes[0].split(b"\r\netag: ")[1].split(b"\r\n")[0]
    protocol.data_received(BULK + b"If-None-Match: %s\r\n" % etag + head[len(BULK) :] + BODY)
    assert app.calls == 0 and len(transport.writes) == 2
    assert transport.writes[1].startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert transport.writes[1].endswith(b"\r\n\r\n")
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ([b"%(etag)s"], b"304"),
        ([b"W/%(etag)s"], b"304"),
        ([b'"other", %(etag)s'], b"304"),
        ([b"*"], b"304"),
        ([b'"other"', b"%(etag)s"], b"304"),  # two lines are one list (RFC 9110, 5.3)
        ([b'"other"'], b"200"),
        ([b'"other"', b'"else"'], b"200"),
    ],
)
async def test_every_if_none_match_line_counts_for_a_direct_304(
    lines: list[bytes], status: bytes
) -> None:
    protocol, transport, app = _protocol()
    head = BULK + b"Content-Length: %d\r\n\r\n" % len(BODY)
    protocol.data_received(head + BODY)
    etag = transport.writes[0].split(b"\r\netag: ")[1].split(b"\r\n")[0]
    validators = b"".join(b"If-None-Match: %s\r\n" % (line % {b"etag": etag}) for line in lines)
    protocol.data_received(BULK + validators + head[len(BULK) :] + BODY)
    assert app.calls == 0 and transport.writes[1].startswith(b"HTTP/1.1 " + status)
    # The ASGI app's answer to the same headers (flaggery.ofrep.app.OfrepApp.evaluation).
    headers = [(b"if-none-match", line % {b"etag": etag}) for line in lines]
    answer_status, answer_headers, answer = app.ofrep.evaluation(None, headers, BODY)
    assert b"%d" % answer_status == status
    assert transport.writes[1].endswith(b"\r\n\r\n" + answer)
    assert all(b"%s: %s\r\n" % header in transport.writes[1] for header in answer_headers)
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"context": {"targetingKey": ""}}', b"400"),  # INVALID_CONTEXT
        (b'{"context": {}}', b"400"),  # TARGETING_KEY_MISSING
        (b'{"context": ', b"400"),  # PARSE_ERROR
    ],
)
async def test_ofrep_errors_after_the_body_are_direct_too(body: bytes, status: bytes) -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(SINGLE + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert app.calls == 0 and transport.writes[0].startswith(b"HTTP/1.1 " + status)
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    "request_bytes",
    [
        SINGLE + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY,
        SINGLE + b"Content-Length: 65537\r\n\r\n",  # declared over the bound: the app's 413
        SINGLE + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % 70_000 + b"x" * 70_000 + b"\r\n",
        b"GET /ofrep/v1/evaluate/flags/checkout HTTP/1.1\r\nHost: x\r\n\r\n",  # the app's 405
        b"POST /ofrep/v1/evaluate/flags/checkout?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"POST /ofrep/v1/events HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        # A flag key that is not UTF-8 once percent-decoded: the app's 400 PARSE_ERROR.
        b"POST /ofrep/v1/evaluate/flags/caf%E9 HTTP/1.1\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(BODY)
        + BODY,
    ],
)
async def test_anything_else_goes_through_the_app(request_bytes: bytes) -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(request_bytes)
    assert transport.writes == [] or transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes
    protocol.connection_lost(None)


async def test_a_body_past_the_bound_is_handed_to_the_app_for_its_413() -> None:
    protocol, transport, app = _protocol()
    protocol.data_received(SINGLE + b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(5):  # 80,000 bytes in chunks of 16,000: the bound (65,536) is passed
        protocol.data_received(b"%x\r\n" % 16_000 + b"x" * 16_000 + b"\r\n")
    protocol.data_received(b"0\r\n\r\n")
    await asyncio.sleep(0.01)
    assert app.calls == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 413 ")
    protocol.connection_lost(None)


async def test_a_missing_client_token_goes_to_the_app_for_its_401() -> None:
    keyring = Keyring(Settings(client_tokens="s3cret-client-token"))
    protocol, transport, app = _protocol(keyring)
    length = b"Content-Length: %d\r\n\r\n" % len(BODY)
    protocol.data_received(SINGLE + length + BODY)
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes[0].startswith(b"HTTP/1.1 401 ")
    protocol.data_received(
        SINGLE + b"Authorization: Bearer s3cret-client-token\r\n" + length + BODY
    )
    assert app.calls == 1 and transport.writes[-1].endswith(_single_answer())  # directly
    protocol.connection_lost(None)


async def test_an_unexpected_error_is_left_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    protocol, transport, app = _protocol()

    def fails(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.ofrep, "_evaluate_body", fails)
    protocol.data_received(SINGLE + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
    assert transport.writes == []
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes[0].startswith(b"HTTP/1.1 500 ")
    protocol.connection_lost(None)


def _app_with(snapshot: Snapshot) -> OfrepApp:
    app = OfrepApp(Keyring(Settings()))
    app.evaluator = cast(Evaluator, _Evaluator(snapshot))
    return app


def test_a_body_asked_again_is_answered_from_what_it_got_in_this_snapshot() -> None:
    app = _app_with(SNAPSHOT)
    first = app.evaluation("checkout", [], BODY)
    assert first[0] == 200 and app.evaluation("checkout", [], BODY) == first
    current = app._answers
    assert current is not None and current.by_body.get(BODY) is not None
    long_body = b'{"context": {"targetingKey": "7", "pad": "%s"}}' % (b"p" * 600)
    assert app.evaluation("checkout", [], long_body)[0] == 200
    assert current.by_body.get(long_body) is None  # too long to keep
    refused = b'{"context": {"targetingKey": ""}}'
    assert app.evaluation("checkout", [], refused)[0] == 400
    assert current.by_body.get(refused) is None  # errors are not kept
    # A new snapshot: nothing kept from the old one answers.
    app.evaluator = cast(Evaluator, _Evaluator(build_snapshot(make_state(), minute(1))))
    app.evaluation("checkout", [], BODY)
    assert app._answers is not current and app._answers is not None
    assert app._answers.snapshot is app.evaluator.snapshot


def test_with_rules_no_body_is_kept_since_date_rules_follow_the_clock() -> None:
    germany = parse_rule([[{"contextName": "country", "operator": "IN", "values": ["DE"]}]])
    state = make_state(
        buckets=[1],
        features=[Feature("checkout", ("on", "off"), default="on")],
        groups=[Group("germany", {"checkout": "off"}, germany)],
    )
    app = _app_with(build_snapshot(state, minute(0)))
    body = b'{"context": {"targetingKey": "k", "country": "DE"}}'
    status, _, answer = app.evaluation("checkout", [], body)
    assert status == 200 and b'"variant":"off"' in answer
    assert app._answers is not None and app._answers.by_body.get(body) is None


@pytest.mark.parametrize("key", [UUID, "7", "042"])
def test_without_rules_attributes_other_than_the_subject_change_nothing(key: str) -> None:
    app = _app_with(SNAPSHOT)
    alone = app.evaluation("checkout", [], b'{"context": {"targetingKey": "%s"}}' % key.encode())
    with_attributes = b'{"context": {"targetingKey": "%s", "country": "DE", "n": 1}}'
    assert app.evaluation("checkout", [], with_attributes % key.encode()) == alone
    assert alone[0] == 200


@pytest.mark.parametrize("key", [b'""', b"42", b'"a\\u0000b"', b"[1]", b'"%s"' % (b"k" * 257)])
def test_a_bad_key_is_invalid_context_with_or_without_other_attributes(key: bytes) -> None:
    app = _app_with(SNAPSHOT)
    bodies = (b'{"context": {"targetingKey": %s}}', b'{"context": {"targetingKey": %s, "a": 1}}')
    for body in bodies:
        status, _, answer = app.evaluation("checkout", [], body % key)
        assert status == 400 and b'"INVALID_CONTEXT"' in answer
