"""What a replica tells its subscribers: one `Update` after every change a reader could see.

Subscribers are plain callables, registered and removed through `Subscribers`; they run
synchronously on the task that made the change (a feed, the A/B-test timer), in registration
order, and must not block. flaggery.live.evaluator builds its public subscription API on this.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flaggery.engine import Snapshot
from flaggery.engine.model import Change

__all__ = ["Subscriber", "Subscribers", "Update"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Update:
    """The replica's state right after a change.

    ``snapshot``: the current snapshot (``revision`` is its revision). ``changes``: the
    change-log entries just applied, in revision order; None after a full load (``reason``
    says why: "full load", a gap, a restored file...); empty when only the time (an A/B test
    started or ended) or the staleness moved. ``stale``: whether answers may lag the source.
    """

    snapshot: Snapshot
    changes: Sequence[Change] | None
    reason: str | None
    stale: bool

    @property
    def revision(self) -> int:
        return self.snapshot.revision


Subscriber = Callable[[Update], None]


class Subscribers:
    """The registered subscribers of one replica."""

    def __init__(self) -> None:
        self._subscribers: dict[int, Subscriber] = {}  # registration order
        self._tokens = itertools.count()

    def __len__(self) -> int:
        return len(self._subscribers)

    def add(self, subscriber: Subscriber) -> Callable[[], None]:
        """Register ``subscriber``; returns the function that removes it (idempotent; it does
        not keep the subscriber alive)."""
        token = next(self._tokens)
        self._subscribers[token] = subscriber
        return functools.partial(self._subscribers.pop, token, None)  # type: ignore[return-value]

    def tell(self, update: Update) -> None:
        """Call every subscriber with ``update``. One that raises is logged and skipped, so it
        cannot stop the feed or keep the others from hearing."""
        for subscriber in tuple(self._subscribers.values()):  # one may remove itself meanwhile
            try:
                subscriber(update)
            except Exception:
                log.exception(
                    "A snapshot subscriber failed on revision %s",
                    update.revision,
                    extra={"revision": update.revision},
                )
