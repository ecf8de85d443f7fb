"""The flaggery exception tree.

Leaf names are flaggery 0.2.1's, because REST clients read them from the error envelope
``{"exception": {"name": ..., "message": ...}}``. The branches let callers catch by kind::

    FlaggeryError
    ├── NotFound            SubjectNotFound, FeatureNotFound, VariantNotFound, GroupNotFound,
    │                       AbTestNotFound, RolloutNotFound, BucketNotFound, OverrideNotFound,
    │                       ChangeNotFound
    ├── AlreadyExists       SubjectExists, FeatureExists, VariantExists, GroupExists,
    │                       AbTestExists, RolloutExists, SubjectAlreadyInGroup
    ├── InvalidInput        ValidationError, InvalidRolloutProportion, InvalidTargetingKey,
    │                       AmbiguousCredentials
    ├── Conflict            NoBuckets, SubjectNotInGroup, FeatureHasChildren, VariantIsUsed,
    │                       AbTestIsLive, AbTestNotLive, GroupIsUsed, RevertRefused
    │   └── EntityChanged   a conditional write (if_revision, If-Match) whose entity
    │                       changed since the revision the caller saw
    ├── NotAdmin            the server is read-only
    ├── Unauthorized        missing or wrong token (admin, reader or client)
    ├── Forbidden           a valid token whose role does not allow the route, or a client
    │                       token that is not a configured one
    ├── TooManyAttempts     the client's address failed to authenticate too often: retry later
    ├── MisdirectedRequest  an open loopback server was addressed by another name (Host)
    ├── TooManyStreams      this process serves as many event streams as it may: retry later
    ├── RevisionNotReached  a read asked for a revision this server has not reached in time
    └── DatabaseUnavailable the database could not be reached for a write
        └── UpstreamUnavailable  an edge's upstream server could not be reached, or
            └── UpstreamRefused  refused the edge's token (401/403)

HTTP status codes are assigned in one table, ``flaggery.http.errors``; nowhere else.
"""

from __future__ import annotations

__all__ = [
    "AbTestExists",
    "AbTestIsLive",
    "AbTestNotFound",
    "AbTestNotLive",
    "AlreadyExists",
    "AmbiguousCredentials",
    "BucketNotFound",
    "ChangeNotFound",
    "Conflict",
    "DatabaseUnavailable",
    "EntityChanged",
    "FeatureExists",
    "FeatureHasChildren",
    "FeatureNotFound",
    "FlaggeryError",
    "Forbidden",
    "GroupExists",
    "GroupIsUsed",
    "GroupNotFound",
    "InvalidInput",
    "InvalidRolloutProportion",
    "InvalidTargetingKey",
    "MisdirectedRequest",
    "NoBuckets",
    "NotAdmin",
    "NotFound",
    "OverrideNotFound",
    "RevertRefused",
    "RevisionNotReached",
    "RolloutExists",
    "RolloutNotFound",
    "SubjectAlreadyInGroup",
    "SubjectExists",
    "SubjectNotFound",
    "SubjectNotInGroup",
    "TooManyAttempts",
    "TooManyStreams",
    "Unauthorized",
    "UpstreamRefused",
    "UpstreamUnavailable",
    "ValidationError",
    "VariantExists",
    "VariantIsUsed",
    "VariantNotFound",
]


class FlaggeryError(Exception):
    """Base of every error flaggery raises on purpose. ``str(error)`` is the user-facing message."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.name


class NotFound(FlaggeryError):
    """The named entity does not exist."""


class AlreadyExists(FlaggeryError):
    """The entity to create exists already."""


class InvalidInput(FlaggeryError):
    """The arguments are malformed or out of range."""


class Conflict(FlaggeryError):
    """The request is well-formed but the current state forbids it."""


class SubjectNotFound(NotFound):
    pass


class FeatureNotFound(NotFound):
    pass


class VariantNotFound(NotFound):
    pass


class GroupNotFound(NotFound):
    pass


class AbTestNotFound(NotFound):
    pass


class RolloutNotFound(NotFound):
    pass


class BucketNotFound(NotFound):
    pass


class ChangeNotFound(NotFound):
    """No change-log row has that revision (never written, or pruned by retention)."""


class OverrideNotFound(NotFound):
    """New in 0.3: removing a group override that does not exist."""


class SubjectExists(AlreadyExists):
    pass


class FeatureExists(AlreadyExists):
    pass


class VariantExists(AlreadyExists):
    pass


class GroupExists(AlreadyExists):
    pass


class AbTestExists(AlreadyExists):
    pass


class RolloutExists(AlreadyExists):
    pass


class SubjectAlreadyInGroup(AlreadyExists):
    pass


class ValidationError(InvalidInput):
    pass


class InvalidRolloutProportion(InvalidInput):
    pass


class InvalidTargetingKey(InvalidInput):
    """New in 0.3: a targeting key that is empty, longer than 256 characters, holds NUL, or is
    not Unicode text (a lone surrogate)."""


class NoBuckets(Conflict):
    pass


class SubjectNotInGroup(Conflict):
    pass


class FeatureHasChildren(Conflict):
    pass


class VariantIsUsed(Conflict):
    pass


class GroupIsUsed(Conflict):
    """New in 0.3: the group is the audience of a rollout or an A/B test."""


class AbTestIsLive(Conflict):
    """The A/B test is running: stop it before deleting it."""


class AbTestNotLive(Conflict):
    """Only a running A/B test can be stopped."""


class RevertRefused(Conflict):
    """A revert that cannot be made: a later change touched the same entity, the change was
    written before flaggery recorded what it replaced, or its kind is not reverted (the
    message says which and what to do). Nothing was written."""


class EntityChanged(Conflict):
    """A write made on condition that its entity had not changed since a revision (Python
    ``if_revision=``, REST ``If-Match``, a dashboard form) was refused because it had: the
    message says which writes changed it. Nothing was written."""


class NotAdmin(FlaggeryError):
    """An admin route was called on a read-only server."""


class Unauthorized(FlaggeryError):
    """A guarded route was called without a configured bearer token: an admin or reader
    route without one, or a serving route when client tokens are configured."""


class Forbidden(FlaggeryError):
    """The token is not allowed this route: its role is too low (a reader cannot write), or
    it is not one of the configured client tokens."""


class AmbiguousCredentials(InvalidInput):
    """The request has two Authorization (or two X-API-Key) headers: which one counts would be
    a guess, so neither does."""


class TooManyAttempts(FlaggeryError):
    """The client's address presented too many wrong tokens; ``retry_after`` seconds until it
    may present another (flaggery.access.attempts)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MisdirectedRequest(FlaggeryError):
    """A server open because it listens on loopback was addressed by a name that is not a
    loopback name or a FLAGGERY_ALLOWED_HOSTS one (DNS rebinding; flaggery.access.hosts)."""


class TooManyStreams(FlaggeryError):
    """This process serves as many event streams as FLAGGERY_MAX_STREAMS allows; ``retry_after``
    seconds is a hint when to try again (the other replicas or workers may have room)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RevisionNotReached(FlaggeryError):
    """A read asked for a minimum revision this server's snapshot did not reach in time."""


class DatabaseUnavailable(FlaggeryError):
    """The database could not be reached; the write was not applied."""


class UpstreamUnavailable(DatabaseUnavailable):
    """An edge (FLAGGERY_UPSTREAM_URL) has no snapshot from its upstream flaggery server: it
    could not be reached or answered an error. A DatabaseUnavailable, because to an edge its
    upstream is its database: code that catches outages catches this too."""


class UpstreamRefused(UpstreamUnavailable):
    """The upstream answered 401 or 403: FLAGGERY_UPSTREAM_TOKEN is missing or is not one of
    its reader tokens. Retrying helps only once the upstream's tokens or the edge's change."""
