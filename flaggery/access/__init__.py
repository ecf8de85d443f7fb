"""Who may call what: the one credential rule, the role table's checks, failed-attempt limits
and the Host rule of an open loopback server. Used by every entry point (the REST routes, the
flags fast path, OFREP, the dashboard and its stream); see docs/security.md."""

from flaggery.access.attempts import FailedAttempts
from flaggery.access.credentials import Keyring, presented_secret
from flaggery.access.hosts import HostRule

__all__ = ["FailedAttempts", "HostRule", "Keyring", "presented_secret"]
