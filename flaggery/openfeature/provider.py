"""``FlaggeryProvider``: the OpenFeature Python SDK's provider over an `Evaluator`.

    async with Evaluator.from_db_url(url) as evaluator:
        api.set_provider(FlaggeryProvider(evaluator))
        client = api.get_client()
        client.get_boolean_value("checkout", False, EvaluationContext(targeting_key="42"))

The targeting key is any text of 1 to 256 characters: a registered subject's canonical decimal
id is that subject, any other key is hashed into a bucket (docs/allocation.md); a context
attribute (``subject_attribute``, default ``subject``) may name a registered subject to bucket
by instead. Each resolution is a lookup in answers built once per view of the current snapshot,
from the engine's explanation through the mapping table OFREP uses too
(`flaggery.flag_evaluation`), so reasons, variants, values and metadata are OFREP's. Nothing
does I/O; the async methods are the sync ones.

Events: PROVIDER_CONFIGURATION_CHANGED with the changed flag keys when a new snapshot is
swapped in; PROVIDER_STALE when the evaluator loses the database, PROVIDER_READY when it is
back; PROVIDER_ERROR from `initialize` if no snapshot is loaded yet (then READY once one is).
They come from a watcher of `Evaluator.updates` on the evaluator's event loop: construct the
provider on that loop, or pass it as ``loop``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import (
    FlagNotFoundError,
    InvalidContextError,
    ProviderNotReadyError,
    TargetingKeyMissingError,
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.hook import Hook
from openfeature.provider import AbstractProvider, Metadata

from flaggery.engine import SUBJECT_ATTRIBUTE, Snapshot
from flaggery.engine.evaluation import BoundedCache
from flaggery.engine.targeting import check_targeting_key
from flaggery.errors import InvalidTargetingKey
from flaggery.flag_evaluation import (
    AnswerKey,
    FlagEvaluation,
    answer_key,
    evaluate_unit,
    targeted_features,
    with_revision,
)
from flaggery.live.evaluator import Evaluator
from flaggery.openfeature.flag_diff import changed_flags

__all__ = ["FlaggeryProvider"]

Details = FlagResolutionDetails[Any]
KEY_CACHE_SIZE = 65_536
"""Targeting keys remembered per snapshot (about 100 bytes each; `BoundedCache`: keys asked
for often stay however many new keys arrive)."""
VIEW_CACHE_SIZE = 16_384
"""Views whose resolutions are kept per snapshot: with rule groups, contexts can make up to
buckets x 2**groups of them, so they are bounded as keys are."""
_NO_ATTRIBUTES: Mapping[str, Any] = {}


class _Resolved:
    """One snapshot's resolutions, per view and flag, built on first use; and, as a shortcut
    for the hot path, per targeting key seen without a subject attribute, where the answer
    depends on the key alone: a snapshot with no targeting rules, or a context with no
    attributes. Both bounded (`BoundedCache`)."""

    __slots__ = ("by_key", "by_view", "keyed", "snapshot", "subject_attribute", "targeted")

    def __init__(self, snapshot: Snapshot, subject_attribute: str) -> None:
        self.snapshot = snapshot
        self.subject_attribute = subject_attribute
        self.keyed = not snapshot.config.rules
        """No rule reads the context: a key's answer is the same in every context."""
        self.targeted = targeted_features(snapshot.config)
        self.by_view: BoundedCache[AnswerKey, dict[str, Details]] = BoundedCache(VIEW_CACHE_SIZE)
        self.by_key: BoundedCache[str, dict[str, Details]] = BoundedCache(KEY_CACHE_SIZE)

    def by_key_only(self, attributes: Mapping[str, Any]) -> bool:
        """Whether a request with `attributes` may be answered by its key alone."""
        return (self.keyed or not attributes) and self.subject_attribute not in attributes

    def for_context(
        self, key: str | None, attributes: Mapping[str, Any], now: datetime
    ) -> dict[str, Details]:
        """flag -> resolution for targeting key `key` with context `attributes` at `now` (the
        ``currentTime`` of date rules). Raises TargetingKeyMissingError or InvalidContextError."""
        if key is None:
            raise TargetingKeyMissingError("The context needs a targeting key.")
        snapshot = self.snapshot
        try:
            evaluation = snapshot.evaluate(
                check_targeting_key(key), attributes, self.subject_attribute, now
            )
        except InvalidTargetingKey as error:
            raise InvalidContextError(str(error)) from None
        view = answer_key(evaluation)
        by_flag = self.by_view.get(view) or self.by_view.old.get(view)
        if by_flag is None:
            evaluations = evaluate_unit(snapshot, evaluation, self.targeted)
            revision = snapshot.revision
            by_flag = {e.key: _details(with_revision(e, revision)) for e in evaluations}
        self.by_view.put(view, by_flag)
        if self.by_key_only(attributes):
            self.by_key.put(key, by_flag)
        return by_flag


def _typed_resolve(kind: type[Any]) -> Callable[..., Details]:
    """A ``resolve_<kind>_details`` method. It returns the shared precomputed resolution when
    its value has exactly the asked type, else what `_typed` makes of it. Costs two dict
    lookups for a targeting key seen since the last swap (without a subject attribute);
    otherwise also `Snapshot.evaluate` (and, once per view and snapshot, the view's
    explanation)."""

    def resolve(
        self: FlaggeryProvider,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> Details:
        resolved = self._resolved
        snapshot = self._evaluator.snapshot if resolved is not None else None
        if resolved is None or resolved.snapshot is not snapshot:
            resolved = self._resolved_now()
        if evaluation_context is None:
            key, attributes = None, _NO_ATTRIBUTES
        else:
            key, attributes = evaluation_context.targeting_key, evaluation_context.attributes
        by_flag = (
            resolved.by_key.get(key)  # type: ignore[arg-type]  # None is never a key
            if resolved.by_key_only(attributes)
            else None
        )
        if by_flag is None:
            by_flag = resolved.for_context(key, attributes, self._evaluator.now())
        details = by_flag.get(flag_key)
        if details is None:
            raise FlagNotFoundError(f"Flag {flag_key!r} was not found.")
        return details if type(details.value) is kind else _typed(details, default_value, kind)

    return resolve


class FlaggeryProvider(AbstractProvider):
    def __init__(
        self,
        evaluator: Evaluator,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> None:
        """`loop`: the evaluator's event loop, for the event watcher; default: the running
        loop, if any (without one, no events beyond the SDK's own READY/ERROR).
        `subject_attribute`: the context attribute that names a registered subject to bucket
        by (as FLAGGERY_SUBJECT_ATTRIBUTE does for OFREP)."""
        super().__init__()
        self._evaluator = evaluator
        self._subject_attribute = subject_attribute
        self._loop = loop
        if loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        self._resolved: _Resolved | None = None
        self._watcher: concurrent.futures.Future[None] | None = None

    def get_metadata(self) -> Metadata:
        return Metadata(name="flaggery")

    def get_provider_hooks(self) -> list[Hook]:
        return []

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Start the event watcher. ProviderNotReadyError if the evaluator has no snapshot
        yet (the SDK then reports ERROR, and the watcher READY once one is loaded)."""
        if self._loop is not None and self._watcher is None:
            self._watcher = asyncio.run_coroutine_threadsafe(self._watch(), self._loop)
        if self._evaluator.revision < 0:
            raise ProviderNotReadyError("The evaluator has not loaded a snapshot yet.")

    def shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    # The five typed resolves are one function made five times (`_typed_resolve`): the lookup
    # is inlined in it because a call frame is a third of a resolution's cost.
    resolve_boolean_details = _typed_resolve(bool)
    resolve_string_details = _typed_resolve(str)
    resolve_integer_details = _typed_resolve(int)
    resolve_float_details = _typed_resolve(float)
    resolve_object_details = _typed_resolve(dict)

    async def resolve_boolean_details_async(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self.resolve_boolean_details(flag_key, default_value, evaluation_context)

    async def resolve_string_details_async(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self.resolve_string_details(flag_key, default_value, evaluation_context)

    async def resolve_integer_details_async(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self.resolve_integer_details(flag_key, default_value, evaluation_context)

    async def resolve_float_details_async(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self.resolve_float_details(flag_key, default_value, evaluation_context)

    async def resolve_object_details_async(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self.resolve_object_details(flag_key, default_value, evaluation_context)

    def _resolved_now(self) -> _Resolved:
        """The current snapshot's resolutions; ProviderNotReadyError before the first one."""
        try:
            snapshot = self._evaluator.snapshot
        except RuntimeError:  # nothing loaded yet
            raise ProviderNotReadyError("The evaluator has not loaded a snapshot yet.") from None
        resolved = self._resolved
        if resolved is None or resolved.snapshot is not snapshot:
            resolved = self._resolved = _Resolved(snapshot, self._subject_attribute)
        return resolved

    async def _watch(self) -> None:
        evaluator = self._evaluator
        with evaluator.updates() as updates:  # before reading the state: nothing is missed
            last = None if evaluator.revision < 0 else evaluator.snapshot
            stale = last is not None and evaluator.stale
            if stale:
                self._emit_staleness(stale)
            async for update in updates:
                if last is None:
                    self.emit_provider_ready(ProviderEventDetails(message="Snapshot loaded."))
                elif update.snapshot is not last and (
                    flags := changed_flags(last, update.snapshot)
                ):
                    self.emit_provider_configuration_changed(ProviderEventDetails(flags))
                last = update.snapshot
                if update.stale != stale:
                    stale = update.stale
                    self._emit_staleness(stale)

    def _emit_staleness(self, stale: bool) -> None:
        if stale:
            message = "The database is unreachable: answers may lag it."
            self.emit_provider_stale(ProviderEventDetails(message=message))
        else:
            self.emit_provider_ready(ProviderEventDetails(message="The database is back."))


def _details(evaluation: FlagEvaluation) -> Details:
    """The SDK's resolution of one OFREP evaluation; value None where OFREP omits it."""
    value = evaluation.value
    return FlagResolutionDetails(
        value=None if isinstance(value, msgspec.UnsetType) else value,
        reason=Reason(evaluation.reason),
        variant=evaluation.variant,
        flag_metadata=evaluation.metadata,
    )


def _typed(details: Details, default: Any, kind: type[Any]) -> Details:
    """`details` for a caller asking for `kind` whose value is not exactly of that type: the
    caller's default where OFREP omits the value, an int as a float, else TypeMismatchError
    (the SDK then answers the default with TYPE_MISMATCH)."""
    value = details.value
    if value is None:  # disabled, or no variant: the caller's default
        return FlagResolutionDetails(
            default, None, None, details.reason, details.variant, details.flag_metadata
        )
    if kind is float and type(value) is int:  # a number is a float to OpenFeature
        return FlagResolutionDetails(
            float(value), None, None, details.reason, details.variant, details.flag_metadata
        )
    raise TypeMismatchError(
        f"Expected a {kind.__name__} but variant {details.variant!r} has the "
        f"{type(value).__name__} value {value!r:.60}."
    )
