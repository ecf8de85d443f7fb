"""The wire format: one msgspec Struct per query string, body and response, and the decoders
and encoder, built once.

Shapes and field names are flaggery 0.2.1's (docs/rest-api.md, Routes); the OpenAPI document
is generated from these same types. Query strings decode leniently ("true" is a bool), except
integers, which are plain decimal digits within signed 64 bits; unknown and repeated parameters
are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, TypeVar

import msgspec
import msgspec.inspect
from msgspec import UNSET, Meta, UnsetType
from starlette.datastructures import QueryParams

from flaggery.decimal_text import INT64_MIN, DecimalTextError, parse_decimal
from flaggery.engine.rules import CONTEXT_NAME, Rule
from flaggery.errors import ValidationError
from flaggery.http.errors import RequestValidationError
from flaggery.store.validation import (
    MAX_SUBJECT_ID,
    MIN_SUBJECT_ID,
    TOO_DEEP,
    json_decode_error,
)

__all__ = [
    "AbTestBody",
    "AbTestEnvelope",
    "AbTestGroupIn",
    "AbTestGroupOut",
    "AbTestIn",
    "AbTestNames",
    "AbTestOut",
    "AmountQuery",
    "AudienceQuery",
    "AutoStopQuery",
    "Bucket",
    "BucketIds",
    "Buckets",
    "ContextQuery",
    "FeatureNames",
    "FeatureOut",
    "Flags",
    "ForgetQuery",
    "GroupNames",
    "GroupOut",
    "Health",
    "IgnoredQuery",
    "Instant",
    "MakeDefaultQuery",
    "MembersAdded",
    "Moment",
    "NewSubject",
    "NewSubjectQuery",
    "NoQuery",
    "PauseQuery",
    "PlanBody",
    "PlanList",
    "PlanOut",
    "PlanStepIn",
    "PlanStepOut",
    "Readiness",
    "RestoreQuery",
    "RevertQuery",
    "Revision",
    "RolloutOut",
    "RolloutUpdateQuery",
    "RuleBody",
    "ScheduleBody",
    "ScheduleList",
    "ScheduleOut",
    "ScheduledStepIn",
    "ScheduledStepOut",
    "SubjectAdded",
    "SubjectId",
    "SubjectOut",
    "SubjectsAdded",
    "Success",
    "ToStepQuery",
    "VariantQuery",
    "VariantValueBody",
    "WeightQuery",
    "decode_body",
    "decode_query",
    "encode",
    "parse_instant",
    "parse_moment",
    "parse_revision",
    "parse_subject_id",
]

T = TypeVar("T")


SubjectId = Annotated[int, Meta(ge=MIN_SUBJECT_ID, le=MAX_SUBJECT_ID, description="Subject id.")]
Moment = Annotated[
    str,
    Meta(
        description=(
            "A date (YYYY-MM-DD, midnight UTC, as in 0.2.1) or an ISO 8601 datetime; "
            "a datetime without a UTC offset is taken as UTC."
        ),
        examples=["2030-04-01", "2030-04-01T09:30:00+02:00"],
    ),
]


class _Query(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class NoQuery(_Query, frozen=True):
    pass


class IgnoredQuery(msgspec.Struct, frozen=True):
    """The serving routes ignore query strings, as 0.2.1 did (cache busters keep working)."""


CONTEXT_PREFIX = "context"
"""Query parameters ``context.NAME=VALUE`` (or OpenAPI's deepObject ``context[NAME]=VALUE``)
are the evaluation context of a flags request."""


class ContextQuery(msgspec.Struct, frozen=True):
    """The flags routes: ``context.NAME=VALUE`` parameters are the evaluation context
    (docs/targeting.md); any other parameter is ignored, as 0.2.1 did (cache busters)."""

    context: Annotated[
        dict[str, str],
        Meta(
            description="The evaluation context for targeting rules, one attribute a "
            "parameter: context[NAME]=VALUE, or context.NAME=VALUE (values are text)."
        ),
    ] = {}


class WeightQuery(_Query, frozen=True):
    weight: Annotated[int, Meta(description="Subject weight, at least 1.")]


class NewSubjectQuery(_Query, frozen=True):
    weight: Annotated[int, Meta(description="Subject weight, at least 1.")]
    like_key: Annotated[
        str | None,
        Meta(
            description="A targeting key (e.g. the visitor's before sign-in): place the subject "
            "in the bucket this key hashes to, so it keeps the key's variants, unless that "
            "bucket is heavier than the lightest by more than the balance tolerance (the larger "
            "of the weight and 5% of the mean bucket weight); then in the lightest, with a "
            "reason."
        ),
    ] = None


class AmountQuery(_Query, frozen=True):
    amount: Annotated[int, Meta(description="How many buckets to add.")]


class MakeDefaultQuery(_Query, frozen=True):
    make_default: Annotated[bool, Meta(description="Also make it the default variant.")] = False


class RevertQuery(_Query, frozen=True):
    preview: Annotated[
        bool,
        Meta(
            description="true: answer what the revert would change, in words, and write "
            "nothing (a dry run)."
        ),
    ] = False


class RestoreQuery(_Query, frozen=True):
    revision: Annotated[int, Meta(description="Restore the feature as it was at this revision.")]
    preview: Annotated[
        bool,
        Meta(description="true: answer what the restore would change, and write nothing."),
    ] = False


class ForgetQuery(_Query, frozen=True):
    forget: Annotated[
        bool,
        Meta(
            description="Do not remember the subject's bucket (an erasure request): the same "
            "id added again is placed as a new subject. Default: remembered for 90 days."
        ),
    ] = False


class VariantQuery(_Query, frozen=True):
    variant: str


class RolloutUpdateQuery(_Query, frozen=True):
    proportion: Annotated[float | None, Meta(description="0 to 1 (0.25 for 25%).")] = None
    variant: str | None = None
    audience: Annotated[
        str | None,
        Meta(description="A group: the variant goes only to its members; empty: to everyone."),
    ] = None


class AutoStopQuery(_Query, frozen=True):
    enabled: Annotated[bool, Meta(description="true: the test stops itself when red.")]


class AudienceQuery(_Query, frozen=True):
    audience: Annotated[str, Meta(description="A group name; empty: no audience.")]


class ChangesQuery(_Query, frozen=True):
    after: Annotated[int, Meta(description="Writes after this revision (0: from the start).")] = 0
    limit: Annotated[int, Meta(description="At most this many writes, 1 to 1000.")] = 100
    # UNSET, not None: with None allowed, the query text "null" would decode to "no filter".
    feature: Annotated[str | UnsetType, Meta(description="Only writes touching this feature.")] = (
        UNSET
    )
    group: Annotated[str | UnsetType, Meta(description="Only writes touching this group.")] = UNSET
    test: Annotated[str | UnsetType, Meta(description="Only writes touching this A/B test.")] = (
        UNSET
    )
    subject: Annotated[int | UnsetType, Meta(description="Only writes touching this subject.")] = (
        UNSET
    )


class _Body(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class NewSubject(_Body, frozen=True):
    id: SubjectId
    weight: int = 1


VariantValue = Annotated[
    bool | int | float | str | dict[str, Any] | None,
    Meta(description="What OpenFeature clients receive for the variant; null: its name."),
]


class VariantValueBody(_Body, frozen=True):
    value: VariantValue = None


class AbTestGroupIn(_Body, frozen=True):
    name: str
    variants: dict[str, str]
    proportion: Annotated[
        float | None, Meta(description="Share of the weight; all groups or none (equal).")
    ] = None


class AbTestIn(_Body, frozen=True, kw_only=True):
    name: str
    start: Annotated[
        Moment | None,
        Meta(description="Omitted, or at most 5 minutes in the past: the test starts now."),
    ] = None
    end: Moment
    groups: list[AbTestGroupIn]
    audience: Annotated[
        str | None,
        Meta(description="A group: only its members take part. Omitted or empty: everyone."),
    ] = None


class RuleBody(_Body, frozen=True):
    rule: Annotated[
        Rule,
        Meta(
            description="Constraint sets (any may match), each a list of Unleash constraints "
            "(all must match): docs/targeting.md."
        ),
    ]


class AbTestBody(_Body, frozen=True):
    test: AbTestIn


class Success(msgspec.Struct, frozen=True):
    success: bool = True


class SubjectOut(msgspec.Struct, frozen=True):
    id: int
    weight: int
    bucket: int
    groups: list[str]


WeightShare = Annotated[
    float | None, Meta(description="Share of the registered weight, 0 to 1 (null: none).")
]
"""A rollout's or test group's share of the registered weight."""
KeyShare = Annotated[
    float | None,
    Meta(description="Share of hashed targeting keys (its buckets / all buckets), 0 to 1."),
]
"""Its share of hashed targeting keys: differs from WeightShare when bucket weights are uneven."""


class SubjectAdded(msgspec.Struct, frozen=True, omit_defaults=True):
    subject_id: int
    weight: int
    bucket_id: int
    key_bucket: Annotated[
        int | None, Meta(description="With like_key: the bucket the key hashes to.")
    ] = None
    reason: Annotated[
        str | None,
        Meta(description="With like_key, placed elsewhere than key_bucket: why."),
    ] = None


class SubjectsAdded(msgspec.Struct, frozen=True):
    added: int
    bucket_ids: Annotated[list[int], Meta(description="Each subject's bucket, in input order.")]


class MembersAdded(msgspec.Struct, frozen=True):
    added: Annotated[int, Meta(description="How many subjects joined the group.")]


class Flags(msgspec.Struct, frozen=True):
    flags: Annotated[dict[str, str], Meta(description="feature -> variant")]


class Bucket(msgspec.Struct, frozen=True):
    id: int
    weight: int


class Buckets(msgspec.Struct, frozen=True):
    total_buckets: int
    total_weight: int
    buckets: list[Bucket]


class BucketIds(msgspec.Struct, frozen=True):
    bucket_ids: list[int]


class FeatureNames(msgspec.Struct, frozen=True):
    features: list[str]


class ReachOut(msgspec.Struct, frozen=True, omit_defaults=True):
    """One variant as one resolution step serves it now, after precedence."""

    variant: Annotated[str | None, Meta(description="The variant; null: no variant at all.")]
    source: Annotated[
        str | None,
        Meta(description="The step serving it: default, rollout, abtest, override or killed."),
    ]
    subjects: Annotated[int, Meta(description="Registered subjects served this way.")]
    subject_share: Annotated[float, Meta(description="subjects / all registered, 0 to 1.")]
    buckets: Annotated[int, Meta(description="Buckets whose hashed keys are served this way.")]
    key_share: Annotated[float, Meta(description="Share of hashed targeting keys, 0 to 1.")]
    test: str | None = None
    test_group: str | None = None
    group: Annotated[str | None, Meta(description="The overriding group.")] = None


class FeatureOut(msgspec.Struct, frozen=True):
    feature_name: str
    variants: list[str]
    default_variant: str | None
    values: Annotated[
        dict[str, bool | int | float | str | dict[str, Any]],
        Meta(description="variant -> value, for the variants given one (new in 0.3)."),
    ]
    killed: Annotated[
        bool,
        Meta(description="The kill switch is on: everyone gets __DISABLE__ (new in 0.3)."),
    ] = False
    reach: Annotated[
        list[ReachOut],
        Meta(
            description=(
                "Who gets each variant now, after precedence (A/B tests over the rollout, "
                "overrides over both, the kill switch over all), most subjects first; "
                "rule groups are not counted (new in 0.4)."
            )
        ),
    ] = []
    reach_revision: Annotated[
        int | None, Meta(description="The snapshot revision `reach` was counted at.")
    ] = None


class RolloutOut(msgspec.Struct, frozen=True, omit_defaults=True):
    feature: str
    variant: str
    proportion: float
    effective_weight: int
    buckets: list[int]
    weight_share: WeightShare = None
    key_share: KeyShare = None
    audience: Annotated[str | None, Meta(description="The group it serves; absent: everyone.")] = (
        None
    )


class GroupNames(msgspec.Struct, frozen=True):
    groups: list[str]


class GroupOut(msgspec.Struct, frozen=True, omit_defaults=True):
    group_name: str
    subjects: list[int]
    overrides: Annotated[dict[str, str], Meta(description="feature -> variant")]
    rule: Annotated[Rule | None, Meta(description="The targeting rule; absent: members only.")] = (
        None
    )


class AbTestGroupOut(msgspec.Struct, frozen=True):
    name: str
    proportion: float
    variants: dict[str, str]
    buckets: list[int]
    effective_weight: int
    weight_share: WeightShare = None
    key_share: KeyShare = None


class AbTestOut(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    start: Annotated[datetime, Meta(description="UTC, RFC 3339.")]
    end: Annotated[datetime, Meta(description="UTC, RFC 3339.")]
    groups: list[AbTestGroupOut]
    audience: Annotated[str | None, Meta(description="The group it serves; absent: everyone.")] = (
        None
    )
    auto_stop: Annotated[bool, Meta(description="Stops itself when red; absent: false.")] = False


class AbTestEnvelope(msgspec.Struct, frozen=True):
    test: AbTestOut


class AbTestNames(msgspec.Struct, frozen=True):
    abtests: list[str]


class Revision(msgspec.Struct, frozen=True):
    revision: Annotated[int, Meta(description="The database's latest committed write.")]
    snapshot_revision: Annotated[int, Meta(description="The revision this process serves.")]


class Health(msgspec.Struct, frozen=True):
    status: str = "ok"


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    revision: int
    age_seconds: Annotated[float, Meta(description="Since last confirmed current.")]
    subjects: int
    stale: Annotated[
        bool,
        Meta(
            description="The database is unreachable, or its state does not build: answers may lag."
        ),
    ]
    build_error: Annotated[
        str | None,
        Meta(
            description="Why the database's newest state could not be built into a snapshot "
            "(revision, error, records at fault); null when it builds."
        ),
    ] = None


_encoder = msgspec.json.Encoder()


def encode(value: msgspec.Struct) -> bytes:
    return _encoder.encode(value)


def decode_query(params: Mapping[str, str], kind: type[T]) -> T:
    """The query string as ``kind``. Raises RequestValidationError for a parameter given twice
    (which one would be meant is a guess), an integer that is not plain decimal digits ("1e3",
    "1.0", "+5", "1_000" are refused) or does not fit in a signed 64-bit integer, an unknown
    parameter, or a value of the wrong type."""
    if isinstance(params, QueryParams):
        repeated = sorted({key for key, _ in params.multi_items() if len(params.getlist(key)) > 1})
        if repeated:
            raise RequestValidationError(
                f"Invalid query parameters: {', '.join(map(repr, repeated))} given more than "
                "once; give each parameter once."
            )
    values: dict[str, Any] = dict(params)
    if kind is ContextQuery:
        values = {"context": _context_of(values)}
    for name in _integer_fields(kind).intersection(values):  # type: ignore[arg-type]
        _check_integer(name, values[name])
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as error:
        raise RequestValidationError(f"Invalid query parameters: {error}") from None


def _context_of(params: Mapping[str, str]) -> dict[str, str]:
    """The ``context.NAME`` and ``context[NAME]`` parameters as {NAME: VALUE}; a NAME that no
    rule could name, or given both ways, is refused (RequestValidationError)."""
    context: dict[str, str] = {}
    bad: list[str] = []
    for parameter, value in params.items():
        name = _attribute_name(parameter)
        if name is None:
            continue
        if name in context or not CONTEXT_NAME.fullmatch(name):
            bad.append(parameter)
        context[name] = value
    if bad:
        raise RequestValidationError(
            f"Invalid query parameters: {', '.join(map(repr, sorted(bad)))}: an attribute is "
            "given once, and its name has 1 to 100 letters, digits or '_ . : -', starting "
            "with a letter or '_'."
        )
    return context


def _attribute_name(parameter: str) -> str | None:
    """NAME of ``context.NAME`` or ``context[NAME]``; None for any other parameter."""
    if not parameter.startswith(CONTEXT_PREFIX):
        return None
    rest = parameter[len(CONTEXT_PREFIX) :]
    if rest.startswith("."):
        return rest[1:]
    if rest.startswith("[") and rest.endswith("]"):
        return rest[1:-1]
    return None


@cache
def _integer_fields(kind: type[Any]) -> frozenset[str]:
    """The names of ``kind``'s fields that hold an integer (possibly unset)."""
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    return frozenset(field.name for field in info.fields if _holds_integer(field.type))


def _holds_integer(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _holds_integer(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_holds_integer(member) for member in info.types)
    return isinstance(info, msgspec.inspect.IntType)


def _check_integer(name: str, text: str) -> None:
    # Before msgspec's lenient conversion, which reads "1e3" as 1000 and "1.0" as 1.
    try:
        parse_decimal(text, name, low=INT64_MIN)
    except DecimalTextError as error:
        raise RequestValidationError(f"Invalid query parameters: {error}") from None


def decode_body(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """The JSON body through ``decoder``. Raises RequestValidationError for an empty body, JSON
    that does not decode to the declared type, and JSON nested too deeply to decode (msgspec
    raises RecursionError; stored values allow far less nesting anyway)."""
    if not body:
        raise RequestValidationError("The request needs a JSON body.")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as error:
        raise RequestValidationError(f"Invalid JSON body: {error}") from None
    except msgspec.DecodeError as error:
        details = json_decode_error(error, body)
        raise RequestValidationError(f"Invalid JSON body: {details}") from None
    except RecursionError:
        raise RequestValidationError(f"Invalid JSON body: {TOO_DEEP}") from None


def parse_revision(text: str) -> int:
    """A path segment as a revision (1 to 2**63 - 1). Raises RequestValidationError."""
    try:
        return parse_decimal(text, "A revision", low=1, high=MAX_SUBJECT_ID)
    except DecimalTextError as error:
        raise RequestValidationError(str(error)) from None


def parse_subject_id(text: str) -> int:
    """A path segment as a signed 64-bit subject id (flaggery.decimal_text's rule). Raises
    RequestValidationError."""
    try:
        return parse_decimal(text, "A subject id", low=MIN_SUBJECT_ID, high=MAX_SUBJECT_ID)
    except DecimalTextError as error:
        raise RequestValidationError(str(error)) from None


def _excerpt(text: str, limit: int = 40) -> str:
    """``text`` for an error message, shortened: a client may send megabytes of it."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def parse_instant(text: str, what: str) -> datetime:
    """An RFC 3339 date-time with its offset (Z or +hh:mm), as an aware datetime; a date, a
    time without an offset, or anything else is refused with ValidationError (400)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or "T" not in text.upper() or moment.tzinfo is None:
        raise ValidationError(
            f"{what} must be an RFC 3339 date-time with an offset (2030-04-01T09:00:00Z or "
            f"2030-04-01T11:00:00+02:00), got {_excerpt(text)}: a time without an offset is "
            "ambiguous."
        )
    return moment


def parse_moment(text: str, what: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime; no offset means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RequestValidationError(
            f"{what} must be a date (2030-04-01) or an ISO 8601 datetime "
            f"(2030-04-01T09:30:00Z), got {_excerpt(text)}."
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


# Scheduled changes and release plans (flaggery.http.delivery)

Instant = Annotated[
    str,
    Meta(
        description="RFC 3339 date-time with an offset (2030-04-01T09:00:00Z, "
        "2030-04-01T11:00:00+02:00); a time without one is refused (400).",
        max_length=64,
    ),
]


class ScheduledStepIn(_Body, frozen=True):
    at: Instant
    operation: Annotated[
        str,
        Meta(
            description="set_rollout, kill_switch, set_default_variant, add_group_override, "
            "rm_group_override, start_abtest or stop_abtest (arguments: docs/delivery.md)."
        ),
    ]
    arguments: dict[str, Any]


class ScheduleBody(_Body, frozen=True):
    steps: list[ScheduledStepIn]


class ScheduledStepOut(msgspec.Struct, frozen=True):
    step: int
    at: datetime
    operation: str
    arguments: dict[str, Any]
    status: Annotated[str, Meta(description="pending, applied, cancelled or failed")]
    created_by: str
    applied_revision: int | None
    late_seconds: float | None
    error: str | None


class ScheduleOut(msgspec.Struct, frozen=True):
    name: str
    next_at: datetime | None
    steps: list[ScheduledStepOut]


class ScheduleList(msgspec.Struct, frozen=True):
    schedules: list[ScheduleOut]


class PlanStepIn(_Body, frozen=True):
    proportion: Annotated[float, Meta(description="0 to 1 (0.05 for 5%).")]
    hold_seconds: Annotated[
        float | None, Meta(description="How long the step lasts; null only for the last.")
    ] = None


class PlanBody(_Body, frozen=True):
    variant: str
    steps: list[PlanStepIn]
    start: Annotated[Instant | None, Meta(description="The first step's instant; null: now.")] = (
        None
    )


class PlanStepOut(msgspec.Struct, frozen=True):
    proportion: float
    hold_seconds: float | None


class PlanOut(msgspec.Struct, frozen=True):
    feature: str
    variant: str
    steps: list[PlanStepOut]
    status: Annotated[str, Meta(description="active, paused or done")]
    step: Annotated[int, Meta(description="The current step's index from 0; -1: none yet.")]
    proportion: float
    next_at: Annotated[datetime | None, Meta(description="When it advances; null unless active.")]
    updated_by: str
    updated_at: datetime
    note: str


class PlanList(msgspec.Struct, frozen=True):
    plans: list[PlanOut]


class PauseQuery(_Query, frozen=True):
    reason: Annotated[str, Meta(max_length=500)] = ""


class ToStepQuery(_Query, frozen=True):
    to_step: Annotated[
        int | None, Meta(description="A step's index from 0; -1 (rollback): 0%.")
    ] = None
