"""The remote Python client: flags from a flaggery server over HTTP, with a cache per subject
(or key and context) that the server's change stream invalidates. For apps that do not want
the whole snapshot in memory (Evaluator.from_upstream holds it all)."""

from flaggery.client.remote import (
    AsyncFlaggeryClient,
    ContextValue,
    FlagsAnswer,
    ServerUnavailable,
)
from flaggery.client.sync import FlaggeryClient

__all__ = [
    "AsyncFlaggeryClient",
    "ContextValue",
    "FlaggeryClient",
    "FlagsAnswer",
    "ServerUnavailable",
]
