"""The one bounded reader of request bodies (`flaggery.request_body`), used by the REST API and
OFREP: a declared length over the bound is refused before a byte is read, an undeclared
(chunked) body as soon as it passes the bound, and a client that leaves is reported."""

from __future__ import annotations

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from flaggery.request_body import BodyTooLarge, read_body


def _receive(*messages: Message) -> tuple[list[Message], Receive]:
    pending = list(messages)
    read: list[Message] = []

    async def receive() -> Message:
        message = pending.pop(0)
        read.append(message)
        return message

    return read, receive


def _body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_body_in_parts_is_joined() -> None:
    _, receive = _receive(
        _body(b"ab", more=True),
        _body(b""),
    )
    assert await read_body(receive, [(b"content-length", b"2")], 2) == b"ab"


@pytest.mark.parametrize("declared", [b"3", b"1" * 5000])
async def test_a_declared_length_over_the_bound_is_refused_unread(declared: bytes) -> None:
    read, receive = _receive(_body(b"abc"))
    with pytest.raises(BodyTooLarge, match="at most 2 bytes"):
        await read_body(receive, [(b"content-length", declared)], 2)
    assert read == []


async def test_an_undeclared_body_is_cut_off_at_the_bound() -> None:
    read, receive = _receive(_body(b"ab", more=True), _body(b"c", more=True), _body(b"d"))
    with pytest.raises(BodyTooLarge):
        await read_body(receive, [(b"transfer-encoding", b"chunked")], 2)
    assert len(read) == 2


async def test_a_client_that_leaves_is_reported() -> None:
    _, receive = _receive(_body(b"a", more=True), {"type": "http.disconnect"})
    with pytest.raises(ClientDisconnect):
        await read_body(receive, [], 10)
