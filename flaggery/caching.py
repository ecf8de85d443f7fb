"""HTTP caching of the serving routes (the flags route and OFREP's bulk evaluation): entity
tags, ``If-None-Match`` and the ``Cache-Control`` policy. Used by `flaggery.http` and
`flaggery.ofrep` alike.

Every serving response carries ``Cache-Control: private, no-cache``: a browser (or other
private cache) may keep the body but must revalidate it on every use, which costs a 304 with
no body while the subject's flags are unchanged. ``private`` because a subject's flags are
personal data a shared cache must not hand to someone else; ``no-cache`` rather than a
max-age because a kill switch must take effect on the next request, not after a TTL.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CACHE_CONTROL", "etag_matches", "if_none_match", "not_modified_headers"]

CACHE_CONTROL = (b"cache-control", b"private, no-cache")


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Whether an ``If-None-Match`` value matches the strong `etag` (quoted), by RFC 9110's
    weak comparison: ``*``, the tag itself, or a list holding it, with or without ``W/``."""
    if if_none_match == etag:
        return True
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate == b"*" or candidate.removeprefix(b"W/") == etag:
            return True
    return False


def if_none_match(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """Every ``If-None-Match`` line of ASGI `headers` (lower-case names) as one list, or None:
    RFC 9110 (5.3) makes several lines of a list-valued field one comma-separated value."""
    values = [value for name, value in headers if name == b"if-none-match"]
    return b", ".join(values) if values else None


def not_modified_headers(etag: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of a 304: the validator and the policy again, no body or content type."""
    return [(b"etag", etag), CACHE_CONTROL]
