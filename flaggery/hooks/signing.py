"""The webhook signature: HMAC-SHA256 over the timestamp and the body, so a captured delivery
cannot be replayed later with a fresh timestamp.

Header ``Flaggery-Signature: t=<unix seconds>,v1=<hex digest>``, where the digest is
HMAC-SHA256(secret, ``"<t>." + body``). A receiver recomputes it over the raw body, compares in
constant time, and refuses a timestamp further than its tolerance from its own clock
(docs/delivery.md shows a receiver that needs only the standard library).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_SECONDS", "sign", "verify"]

SIGNATURE_HEADER = "Flaggery-Signature"
TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance``
    seconds of ``now`` (unix seconds)."""
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), _digest(secret, timestamp, body))
