"""Serving any targeting key: ``GET /v1/keys/{key}/flags`` and ``GET /v1/keys/{key}/explain``.

The key is the rest of the path between ``/v1/keys/`` and the last segment, percent-decoded
(UTF-8): any text of 1 to 256 characters without NUL, so a key with ``/``, ``?``, ``#``, ``%``,
spaces or line breaks travels percent-encoded (``a/b`` as ``a%2Fb``). A subject's canonical
decimal id is that subject; any other key is hashed into a bucket (flaggery.engine.targeting).
The flags route is answered by the same fast path as the subject flags route
(flaggery.http.serving); the handlers here are its reference behaviour and give every error.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from flaggery.caching import CACHE_CONTROL, etag_matches, not_modified_headers
from flaggery.engine import KeyExplanation
from flaggery.errors import DatabaseUnavailable, InvalidTargetingKey
from flaggery.http.codec import ContextQuery, Flags
from flaggery.http.endpoint import Call, Operation
from flaggery.http.serving import KEY_FLAGS_ROUTE

__all__ = ["OPERATIONS"]

_KEY_PARAMETER = "key"


class _TargetingKeyConvertor(Convertor[str]):
    """Any text, line breaks and ``/`` included (Starlette's ``path`` stops at a line
    break); empty too, so that the route, not a 404, says what a key must be."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("targeting_key", _TargetingKeyConvertor())


async def get_key_flags(call: Call[ContextQuery, None]) -> Response:
    """The key's pre-encoded ``Flags`` JSON with its ETag (304 on a match); with
    ``context.NAME`` parameters, those of the view the context's rule groups give."""
    call.services.require_snapshot()
    view = call.evaluator.evaluate(*_key_request(call)).view
    if_none_match = call.headers.get("if-none-match")
    if if_none_match is not None and etag_matches(if_none_match.encode("latin-1"), view.etag):
        return Response(status_code=304, headers=_str_headers(not_modified_headers(view.etag)))
    headers = _str_headers([(b"etag", view.etag), CACHE_CONTROL])
    return Response(view.json, headers=headers, media_type="application/json")


async def explain_key(call: Call[ContextQuery, None]) -> KeyExplanation:
    """The engine's explanation of the key, encoded as is (with ``context.NAME`` parameters,
    the rule groups the context matched too)."""
    call.services.require_snapshot()
    return call.evaluator.explain_key(*_key_request(call))


def _key_request(call: Call[ContextQuery, None]) -> tuple[str, dict[str, object] | None, str]:
    """(key, context, subject attribute) of a key's request: its ``context.NAME`` parameters
    with the key as ``targetingKey`` (as over OFREP), or no context at all."""
    key = call.path[_KEY_PARAMETER]
    context: dict[str, object] | None = None
    if call.query.context:
        context = {**call.query.context, "targetingKey": key}
    return key, context, call.services.settings.subject_attribute


def _str_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


OPERATIONS = (
    Operation("GET", KEY_FLAGS_ROUTE, get_key_flags, Flags, "Resolve any targeting key's flags",
              "serving", query=ContextQuery, errors=(InvalidTargetingKey, DatabaseUnavailable),
              public=True,
              description="{feature: variant} for any targeting key (1 to 256 characters, no "
              "NUL; percent-encoded in the path, '/' as %2F): a registered subject's canonical "
              "decimal id is that subject, any other key is hashed into a bucket and gets what a "
              "subject in that bucket with no group gets (docs/allocation.md). From this "
              "process's in-memory snapshot, with an ETag. Served in read-only mode."),
    Operation("GET", "/v1/keys/{key:targeting_key}/explain", explain_key, KeyExplanation,
              "Explain any targeting key's flags", "serving", query=ContextQuery,
              errors=(InvalidTargetingKey, DatabaseUnavailable), public=True,
              description="Whether the key was hashed (with its 64-bit hash and the bucket it "
              "jumps to) or is a registered subject, its groups, and per feature the variant "
              "and its source."),
)  # fmt: skip
