"""The start-up check of the uvicorn and httptools internals flaggery's protocol uses, and the
choice of protocol it makes.

`flaggery.http.protocol` subclasses uvicorn's undocumented httptools protocol and uses about
twenty of its internals (listed in its docstring). uvicorn is pinned to the minor version the
tests ran on, but a pin can be overridden: so before serving, `capability_problem` checks that
each internal exists and behaves (it drives a protocol over an in-memory transport: a direct
answer, a request through an ASGI cycle, a close-delimited HTTP/1.0 body, a rejected
``Transfer-Encoding``, a malformed body after an answer), and that the uvicorn methods a
direct answer skips have the source of a tested version (an admission check added to
``on_headers_complete`` would otherwise be bypassed by every flags request). If anything
differs, `protocol_factory` falls back to
`DeadlineProtocol` (uvicorn's stock protocol with only the read deadline and the head bound),
logs why once at WARNING, and ``flaggery_http_protocol_fallback`` is 1.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
from typing import Any

__all__ = ["capability_problem", "check_capabilities", "protocol_factory"]

log = logging.getLogger(__name__)

# sha256 (first 16 hex digits) of the source of each uvicorn method a directly answered
# request skips or whose framing flaggery relies on, per tested uvicorn version. Adding a
# version: review the diff of each method, then add the digest the failing check names.
TESTED_SOURCES = {
    "HttpToolsProtocol.on_headers_complete": {"1ea8589acfad92d8"},  # 0.55
    "HttpToolsProtocol.on_body": {"dba9c32aeba35b6a"},  # 0.55
    "HttpToolsProtocol.on_message_complete": {"1fbad42dc31fc01f"},  # 0.55
    "HttpToolsProtocol.on_response_complete": {"64e254f28e389e76"},  # 0.55
    "RequestResponseCycle.send": {"abdd8601b326a8da"},  # 0.55
}


def protocol_factory(read_timeout: float) -> Any:
    """What ``uvicorn.run(http=...)`` takes: flaggery's protocol class with its deadline bound,
    or, if uvicorn's internals fail the check, `DeadlineProtocol` (logged once at WARNING).
    A partial of a module-level class, so it pickles to spawned worker processes."""
    problem = capability_problem()
    if problem is None:
        from flaggery.http.protocol import ReadTimeoutProtocol

        return functools.partial(ReadTimeoutProtocol, read_timeout=read_timeout)
    log.warning(
        "uvicorn's protocol internals differ from the versions flaggery was tested with (%s): "
        "serving with uvicorn's stock protocol and the read deadline only, without the flags "
        "fast path, HTTP/1.0 stream framing and idle-connection timers. Install the uvicorn "
        "version pyproject.toml names.",
        problem,
    )
    from flaggery.http.deadline import DeadlineProtocol

    return functools.partial(DeadlineProtocol, read_timeout=read_timeout)


@functools.cache
def capability_problem() -> str | None:
    """`check_capabilities`, once per process."""
    return check_capabilities()


def check_capabilities() -> str | None:
    """None if every internal flaggery's protocol uses is there and behaves; otherwise what is
    not, in a sentence."""
    try:
        _check_sources()
        _probe()
    except Exception as error:  # any failure at all means: do not rely on the internals
        return f"{type(error).__name__}: {error}"
    return None


def _check_sources() -> None:
    from uvicorn.protocols.http import httptools_impl

    for qualified, digests in TESTED_SOURCES.items():
        owner, name = qualified.split(".")
        source = inspect.getsource(getattr(getattr(httptools_impl, owner), name))
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        if digest not in digests:
            raise LookupError(f"{qualified} changed (source digest {digest})")


def _probe() -> None:
    from flaggery.http.protocol_probe import probe

    loop = asyncio.new_event_loop()
    try:
        probe(loop)
    finally:
        loop.close()
