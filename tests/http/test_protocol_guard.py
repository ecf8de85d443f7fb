"""The start-up check of uvicorn's internals (`flaggery.http.protocol_guard`): it passes on the
uvicorn installed (the version pinned), names what changed when an internal is missing,
rewritten or behaves differently, and then `flaggery serve` falls back to uvicorn's stock
protocol with the read deadline only, says so once at WARNING and in a metric."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from flaggery.http import protocol_guard
from flaggery.http.deadline import DeadlineProtocol
from flaggery.http.protocol import ReadTimeoutProtocol
from flaggery.http.protocol_guard import check_capabilities, protocol_factory
from flaggery.http.protocol_probe import probe
from tests.http.conftest import MakeClient
from tests.http.test_protocol_direct import FLAGS, _protocol


def test_the_installed_uvicorn_passes() -> None:
    assert check_capabilities() is None


def test_a_missing_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(HttpToolsProtocol, "_unset_keepalive_if_required")
    problem = check_capabilities()
    assert problem is not None and "_unset_keepalive_if_required" in problem


def test_a_rewritten_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """An admission check added where a direct answer skips it would be bypassed."""
    original = HttpToolsProtocol.on_headers_complete

    def on_headers_complete(self: HttpToolsProtocol) -> None:
        if len(self.connections) > 1_000:  # a new admission check
            raise RuntimeError("busy")
        original(self)

    monkeypatch.setattr(HttpToolsProtocol, "on_headers_complete", on_headers_complete)
    problem = check_capabilities()
    assert problem is not None and "HttpToolsProtocol.on_headers_complete changed" in problem


@pytest.mark.parametrize("behaviour", ["no task hook", "no keep-alive", "chunked 1.0"])
def test_the_probe_sees_changed_behaviour(monkeypatch: pytest.MonkeyPatch, behaviour: str) -> None:
    """The probe alone (the source check would catch these first)."""
    if behaviour == "no task hook":  # a request's task started under another name
        monkeypatch.setattr(HttpToolsProtocol, "_start_asgi_task", _renamed)
        monkeypatch.setattr(ReadTimeoutProtocol, "_start_asgi_task", _renamed)
        monkeypatch.setattr(HttpToolsProtocol, "on_headers_complete", _started_elsewhere)
    elif behaviour == "no keep-alive":
        monkeypatch.setattr(HttpToolsProtocol, "on_response_complete", lambda self: None)
    else:  # the cycle frames from another attribute than chunked_encoding
        send = RequestResponseCycle.send

        async def chunked_send(self: RequestResponseCycle, message: Any) -> None:
            self.chunked_encoding = None
            await send(self, message)

        monkeypatch.setattr(RequestResponseCycle, "send", chunked_send)
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(AssertionError):
            probe(loop)
    finally:
        loop.close()


def _renamed(self: Any, cycle: Any, app: Any) -> None:
    raise AssertionError("not called by uvicorn any more")


def _started_elsewhere(self: HttpToolsProtocol) -> None:
    self.cycle = None  # type: ignore[assignment]  # uvicorn's new code path: no hook called


def test_a_failed_check_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(protocol_guard, "capability_problem", lambda: "LookupError: renamed")
    with caplog.at_level(logging.WARNING, logger=protocol_guard.__name__):
        factory = protocol_factory(3.0)
    assert factory.func is DeadlineProtocol and factory.keywords == {"read_timeout": 3.0}
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "LookupError: renamed" in record.getMessage()
    assert protocol_factory.__module__ == protocol_guard.__name__
    monkeypatch.undo()
    assert protocol_factory(3.0).func is ReadTimeoutProtocol


async def test_the_fallback_serves_through_asgi_with_the_deadline() -> None:
    protocol, transport, app = _protocol(protocol_class=DeadlineProtocol, read_timeout=0.05)
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.writes == []  # no direct answer
    await asyncio.sleep(0.01)
    assert app.calls == 1 and transport.writes[-1] == FLAGS
    protocol.data_received(b"GET /v1/subjects/7/flags HTTP/1.1\r\n")  # and then nothing
    await asyncio.sleep(0.1)
    assert transport.writes[-1].startswith(b"HTTP/1.1 408 ") and transport.closed
    protocol.connection_lost(None)


@pytest.mark.parametrize("problem", [None, "LookupError: renamed"])
async def test_the_metric_says_which_protocol(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, problem: str | None
) -> None:
    monkeypatch.setattr("flaggery.http.app.capability_problem", lambda: problem)
    client = await make_client(enable_prometheus=True)
    metrics = (await client.get("/metrics")).text
    value = "0.0" if problem is None else "1.0"
    assert f"\nflaggery_http_protocol_fallback {value}\n" in metrics
