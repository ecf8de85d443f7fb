"""The admin REST API: every route of flaggery 0.2.1 (paths, parameters, shapes and status
codes unchanged) plus bulk subject creation and the lists 0.2.1 lacked.

Each handler is a thin translation between the wire types (``flaggery.http.codec``) and one
``AsyncFlaggery`` call; validation beyond decoding is the store's, so the REST and Python APIs
refuse the same things with the same messages.
"""

from __future__ import annotations

from typing import TypeVar

from msgspec import UnsetType

from flaggery import errors as e
from flaggery.engine.reach import Reach
from flaggery.http.codec import (
    AbTestBody,
    AbTestEnvelope,
    AbTestGroupOut,
    AbTestNames,
    AbTestOut,
    AmountQuery,
    AudienceQuery,
    AutoStopQuery,
    Bucket,
    BucketIds,
    Buckets,
    ChangesQuery,
    FeatureNames,
    FeatureOut,
    ForgetQuery,
    GroupNames,
    GroupOut,
    MakeDefaultQuery,
    MembersAdded,
    NewSubject,
    NewSubjectQuery,
    ReachOut,
    RestoreQuery,
    RevertQuery,
    Revision,
    RolloutOut,
    RolloutUpdateQuery,
    RuleBody,
    SubjectAdded,
    SubjectId,
    SubjectsAdded,
    Success,
    VariantQuery,
    VariantValueBody,
    WeightQuery,
    parse_moment,
    parse_revision,
)
from flaggery.http.endpoint import Call, Operation
from flaggery.http.errors import RequestValidationError
from flaggery.store.audit_trail import ChangePage
from flaggery.store.revert import RevertPreview

__all__ = ["OPERATIONS"]

OK = Success()
T = TypeVar("T")


async def add_subject(call: Call[NewSubjectQuery, None]) -> SubjectAdded:
    subject_id, weight, like_key = call.subject_id(), call.query.weight, call.query.like_key
    if like_key is None:
        return SubjectAdded(subject_id, weight, await call.store.add_subject(subject_id, weight))
    placed = await call.store.add_subject(subject_id, weight, like_key=like_key)
    return SubjectAdded(subject_id, weight, placed.bucket, placed.key_bucket, placed.reason)


async def add_subjects(call: Call[None, list[NewSubject]]) -> SubjectsAdded:
    buckets = await call.store.add_subjects((s.id, s.weight) for s in call.body)
    return SubjectsAdded(len(buckets), buckets)


async def set_subject_weight(call: Call[WeightQuery, None]) -> Success:
    await call.store.set_subject_weight(call.subject_id(), call.query.weight)
    return OK


async def rm_subject(call: Call[ForgetQuery, None]) -> Success:
    await call.store.rm_subject(call.subject_id(), forget=call.query.forget)
    return OK


async def get_buckets(call: Call[None, None]) -> Buckets:
    record = await call.store.get_buckets()
    buckets = [Bucket(b.id, b.weight) for b in record.buckets]
    return Buckets(record.total_buckets, record.total_weight, buckets)


async def increase_buckets(call: Call[AmountQuery, None]) -> BucketIds:
    return BucketIds(await call.store.increase_buckets(call.query.amount))


async def list_features(call: Call[None, None]) -> FeatureNames:
    return FeatureNames(await call.store.list_features())


async def get_feature(call: Call[None, None]) -> FeatureOut:
    feature = await call.store.get_feature(call.path["feature"])
    snapshot = call.evaluator.snapshot
    reach = snapshot.reach(feature.name)
    return FeatureOut(
        feature.name,
        feature.variants,
        feature.default_variant,
        feature.values,
        feature.killed,
        [_reach_out(r, reach.subjects, reach.buckets) for r in reach.reaches],
        snapshot.revision,
    )


def _reach_out(reach: Reach, subjects: int, buckets: int) -> ReachOut:
    via = reach.via
    return ReachOut(
        via.variant,
        via.source,
        reach.subjects,
        reach.subjects / subjects if subjects else 0.0,
        reach.buckets,
        reach.buckets / buckets if buckets else 0.0,
        via.test,
        via.test_group,
        via.group,
    )


async def add_feature(call: Call[None, None]) -> Success:
    await call.store.add_feature(call.path["feature"])
    return OK


async def rm_feature(call: Call[None, None]) -> Success:
    await call.store.rm_feature(call.path["feature"], if_revision=call.if_revision())
    return OK


async def set_default_variant(call: Call[None, None]) -> Success:
    await call.store.set_default_feature_variant(
        call.path["feature"], call.path["variant"], if_revision=call.if_revision()
    )
    return OK


async def add_variant(call: Call[MakeDefaultQuery, VariantValueBody | None]) -> Success:
    variant, feature = call.path["variant"], call.path["feature"]
    value = None if call.body is None else call.body.value
    await call.store.add_variant(
        variant, feature, call.query.make_default, value, if_revision=call.if_revision()
    )
    return OK


async def set_variant_value(call: Call[None, VariantValueBody]) -> Success:
    variant, feature = call.path["variant"], call.path["feature"]
    await call.store.set_variant_value(
        variant, feature, call.body.value, if_revision=call.if_revision()
    )
    return OK


async def add_disabling_variant(call: Call[MakeDefaultQuery, None]) -> Success:
    await call.store.add_disabling_variant(
        call.path["feature"], call.query.make_default, if_revision=call.if_revision()
    )
    return OK


async def rm_variant(call: Call[None, None]) -> Success:
    await call.store.rm_variant(
        call.path["variant"], call.path["feature"], if_revision=call.if_revision()
    )
    return OK


async def kill_switch(call: Call[None, None]) -> Success:
    await call.store.kill_switch(call.path["feature"], if_revision=call.if_revision())
    return OK


async def unkill(call: Call[None, None]) -> Success:
    await call.store.unkill(call.path["feature"], if_revision=call.if_revision())
    return OK


async def get_rollout(call: Call[None, None]) -> RolloutOut:
    r = await call.store.get_rollout(call.path["feature"])
    return RolloutOut(
        r.feature, r.variant, r.proportion, r.effective_weight, r.buckets, r.weight_share,
        r.key_share, r.audience,
    )  # fmt: skip


async def add_rollout(call: Call[VariantQuery, None]) -> Success:
    await call.store.add_rollout(
        call.query.variant, call.path["feature"], if_revision=call.if_revision()
    )
    return OK


async def update_rollout(call: Call[RolloutUpdateQuery, None]) -> Success:
    proportion, variant, audience = call.query.proportion, call.query.variant, call.query.audience
    if proportion is None and variant is None and audience is None:
        raise RequestValidationError("Give proportion, variant, audience, or several.")
    await call.store.set_rollout(
        call.path["feature"], variant, proportion, audience, if_revision=call.if_revision()
    )
    return OK


async def rm_rollout(call: Call[None, None]) -> Success:
    await call.store.rm_rollout(call.path["feature"], if_revision=call.if_revision())
    return OK


async def list_groups(call: Call[None, None]) -> GroupNames:
    return GroupNames(await call.store.list_groups())


async def get_group(call: Call[None, None]) -> GroupOut:
    group = await call.store.get_group(call.path["group"])
    return GroupOut(group.name, group.subjects, group.overrides, group.rule)


async def set_group_rule(call: Call[None, RuleBody]) -> Success:
    await call.store.set_group_rule(
        call.path["group"], call.body.rule, if_revision=call.if_revision()
    )
    return OK


async def rm_group_rule(call: Call[None, None]) -> Success:
    await call.store.rm_group_rule(call.path["group"], if_revision=call.if_revision())
    return OK


async def add_group(call: Call[None, None]) -> Success:
    await call.store.add_group(call.path["group"])
    return OK


async def rm_group(call: Call[None, None]) -> Success:
    await call.store.rm_group(call.path["group"], if_revision=call.if_revision())
    return OK


async def add_subject_to_group(call: Call[None, None]) -> Success:
    await call.store.add_subject_to_group(call.subject_id(), call.path["group"])
    return OK


async def add_subjects_to_group(call: Call[None, list[SubjectId]]) -> MembersAdded:
    await call.store.add_subjects_to_group(call.body, call.path["group"])
    return MembersAdded(len(call.body))


async def rm_subject_from_group(call: Call[None, None]) -> Success:
    await call.store.rm_subject_from_group(call.subject_id(), call.path["group"])
    return OK


async def add_group_override(call: Call[VariantQuery, None]) -> Success:
    group, feature = call.path["group"], call.path["feature"]
    await call.store.add_group_override(
        group, feature, call.query.variant, if_revision=call.if_revision()
    )
    return OK


async def rm_group_override(call: Call[None, None]) -> Success:
    await call.store.rm_group_override(
        call.path["group"], call.path["feature"], if_revision=call.if_revision()
    )
    return OK


async def list_abtests(call: Call[None, None]) -> AbTestNames:
    return AbTestNames(await call.store.list_abtests())


async def get_abtest(call: Call[None, None]) -> AbTestEnvelope:
    test = await call.store.get_abtest(call.path["test_name"])
    groups = [
        AbTestGroupOut(
            g.name,
            g.proportion,
            g.variants,
            g.buckets,
            g.effective_weight,
            g.weight_share,
            g.key_share,
        )
        for g in test.groups
    ]
    return AbTestEnvelope(
        AbTestOut(test.name, test.start, test.end, groups, test.audience, test.auto_stop)
    )


async def add_abtest(call: Call[None, AbTestBody]) -> Success:
    test = call.body.test
    given = [g.proportion for g in test.groups if g.proportion is not None]
    if given and len(given) != len(test.groups):
        raise RequestValidationError("Give a proportion for every test group, or for none.")
    groups = {g.name: g.variants for g in test.groups}
    if len(groups) != len(test.groups):
        raise RequestValidationError("Test group names must be unique.")
    await call.store.add_abtest(
        test.name,
        None if test.start is None else parse_moment(test.start, "start"),
        parse_moment(test.end, "end"),
        groups,
        given or None,
        test.audience,
    )
    return OK


async def set_abtest_audience(call: Call[AudienceQuery, None]) -> Success:
    await call.store.set_abtest_audience(
        call.path["test_name"], call.query.audience or None, if_revision=call.if_revision()
    )
    return OK


async def set_abtest_auto_stop(call: Call[AutoStopQuery, None]) -> Success:
    await call.store.set_abtest_auto_stop(
        call.path["test_name"], call.query.enabled, if_revision=call.if_revision()
    )
    return OK


async def stop_abtest(call: Call[None, None]) -> Success:
    await call.store.stop_abtest(call.path["test_name"], if_revision=call.if_revision())
    return OK


async def rm_abtest(call: Call[None, None]) -> Success:
    await call.store.rm_abtest(call.path["test_name"], if_revision=call.if_revision())
    return OK


async def revision(call: Call[None, None]) -> Revision:
    return Revision(await call.store.revision(), call.evaluator.revision)


SUBJECT = "/v1/subjects/{subject_id}"
FEATURE = "/v1/features/{feature}"
GROUP = "/v1/groups/{group}"
NO_BUCKETS_ERRORS = (e.NoBuckets, e.ValidationError)


async def changes(call: Call[ChangesQuery, None]) -> ChangePage:
    q = call.query
    return await call.store.changes(
        q.after,
        q.limit,
        feature=_given(q.feature),
        group=_given(q.group),
        test=_given(q.test),
        subject=_given(q.subject),
    )


async def revert_change(call: Call[RevertQuery, None]) -> RevertPreview:
    revision = parse_revision(call.path["revision"])
    if call.query.preview:
        return await call.store.preview_revert(revision)
    return await call.store.revert(revision)


async def restore_feature(call: Call[RestoreQuery, None]) -> RevertPreview:
    feature, revision = call.path["feature"], call.query.revision
    if call.query.preview:
        return await call.store.preview_restore_feature(feature, revision)
    return await call.store.restore_feature(feature, revision)


def _given(value: T | UnsetType) -> T | None:
    return None if isinstance(value, UnsetType) else value


OPERATIONS = (
    # Subjects and buckets
    Operation("POST", SUBJECT, add_subject, SubjectAdded, "Add a subject to the lightest bucket",
              "subjects", 201, NewSubjectQuery,
              errors=(e.SubjectExists, e.InvalidTargetingKey, *NO_BUCKETS_ERRORS),
              description="With like_key, to the bucket that targeting key hashes to (within "
              "the balance tolerance), so a visitor who signs in keeps every variant."),
    Operation("PUT", SUBJECT, set_subject_weight, Success, "Change a subject's weight",
              "subjects", query=WeightQuery, errors=(e.SubjectNotFound, e.ValidationError)),
    Operation("DELETE", SUBJECT, rm_subject, Success, "Remove a subject", "subjects",
              query=ForgetQuery, errors=(e.SubjectNotFound,),
              description="Its bucket is remembered for 90 days: the same id added again goes "
              "back to it (and to its A/B test arm). forget=true remembers nothing."),
    Operation("POST", "/v1/subjects", add_subjects, SubjectsAdded,
              "Add many subjects in one transaction", "subjects", 201, body=list[NewSubject],
              errors=(e.SubjectExists, *NO_BUCKETS_ERRORS),
              description="Placed exactly as one-by-one insertion would place them; all or "
              "nothing. Weight defaults to 1."),
    Operation("GET", "/v1/buckets", get_buckets, Buckets, "List buckets", "buckets"),
    Operation("PUT", "/v1/buckets", increase_buckets, BucketIds, "Add empty buckets", "buckets",
              query=AmountQuery, errors=(e.ValidationError,),
              description="New buckets join existing rollouts and A/B tests pro rata."),
    # Features, variants, rollouts
    Operation("GET", "/v1/features", list_features, FeatureNames, "List features", "features"),
    Operation("GET", FEATURE, get_feature, FeatureOut, "Get a feature", "features",
              errors=(e.FeatureNotFound,), conditional=True),
    Operation("POST", FEATURE, add_feature, Success, "Create a feature", "features", 201,
              errors=(e.FeatureExists, e.ValidationError)),
    Operation("DELETE", FEATURE, rm_feature, Success, "Retire a feature", "features",
              errors=(e.FeatureNotFound, e.FeatureHasChildren),
              description="Removes the feature with its variants and default in one "
              "transaction; FeatureHasChildren while a rollout, a running or future A/B test, or "
              "a group override uses it.", conditional=True),
    Operation("PUT", FEATURE + "/default_variant/{variant}", set_default_variant, Success,
              "Set the default variant", "features",
              errors=(e.FeatureNotFound, e.VariantNotFound), conditional=True),
    Operation("POST", FEATURE + "/variants/{variant}", add_variant, Success, "Add a variant",
              "features", 201, MakeDefaultQuery, body=VariantValueBody, optional_body=True,
              errors=(e.FeatureNotFound, e.VariantExists, e.ValidationError),
              description="Optional body {\"value\": ...}: the variant's typed value for "
              "OpenFeature clients (without one, its value is its name).", conditional=True),
    Operation("PUT", FEATURE + "/variants/{variant}/value", set_variant_value, Success,
              "Change a variant's value", "features", body=VariantValueBody,
              errors=(e.FeatureNotFound, e.VariantNotFound, e.ValidationError),
              description="{\"value\": null} gives the variant its name as value again.",
              conditional=True),
    Operation("POST", FEATURE + "/disabling_variant", add_disabling_variant, Success,
              "Add the disabling variant __DISABLE__", "features", 201, MakeDefaultQuery,
              errors=(e.FeatureNotFound, e.VariantExists), conditional=True),
    Operation("DELETE", FEATURE + "/variants/{variant}", rm_variant, Success,
              "Remove an unused variant", "features",
              description="Unused: not the default, not rolled out, not overridden, and not set "
              "by a running or future A/B test (ended tests keep their records).",
              errors=(e.FeatureNotFound, e.VariantNotFound, e.VariantIsUsed), conditional=True),
    Operation("POST", FEATURE + "/kill", kill_switch, Success, "Turn the kill switch on",
              "features", errors=(e.FeatureNotFound,), conditional=True,
              description="Everyone (every subject and targeting key) gets __DISABLE__ of the "
              "feature, whatever its default, rollout, A/B tests and group overrides; those are "
              "kept, so DELETE restores them exactly. One revision; a no-op if already on."),
    Operation("DELETE", FEATURE + "/kill", unkill, Success, "Turn the kill switch off",
              "features", errors=(e.FeatureNotFound,), conditional=True,
              description="Subjects get again exactly what the default, rollout (with its "
              "buckets), A/B tests and group overrides give. One revision; a no-op if off."),
    Operation("GET", FEATURE + "/rollout", get_rollout, RolloutOut, "Get a feature's rollout",
              "rollouts", errors=(e.FeatureNotFound, e.RolloutNotFound), conditional=True),
    Operation("POST", FEATURE + "/rollout", add_rollout, Success, "Create a rollout at 0%",
              "rollouts", 201, VariantQuery,
              errors=(e.FeatureNotFound, e.VariantNotFound, e.RolloutExists), conditional=True),
    Operation("PUT", FEATURE + "/rollout", update_rollout, Success,
              "Change a rollout's proportion and/or variant", "rollouts",
              query=RolloutUpdateQuery,
              errors=(e.FeatureNotFound, e.VariantNotFound, e.RolloutNotFound,
                      e.InvalidRolloutProportion, e.GroupNotFound),
              description="Variant, proportion and audience change in one transaction (one "
              "revision); 0 is a valid proportion (0.2.1 ignored it). audience=GROUP: the "
              "variant goes only to the group's members (explicit or by rule) in the rollout's "
              "buckets; audience= (empty): to every unit in them.", conditional=True),
    Operation("DELETE", FEATURE + "/rollout", rm_rollout, Success, "Remove a rollout",
              "rollouts", errors=(e.RolloutNotFound,), conditional=True),
    # Groups
    Operation("GET", "/v1/groups", list_groups, GroupNames, "List groups", "groups"),
    Operation("GET", GROUP, get_group, GroupOut, "Get a group", "groups",
              errors=(e.GroupNotFound,), conditional=True),
    Operation("POST", GROUP, add_group, Success, "Create a group", "groups", 201,
              errors=(e.GroupExists, e.ValidationError)),
    Operation("DELETE", GROUP, rm_group, Success, "Remove a group", "groups",
              errors=(e.GroupNotFound, e.GroupIsUsed), conditional=True),
    Operation("PUT", GROUP + "/rule", set_group_rule, Success,
              "Set the group's targeting rule", "groups", body=RuleBody,
              errors=(e.GroupNotFound, e.ValidationError),
              description="A request whose evaluation context matches the rule is in the group, "
              "besides its explicit members. Body {\"rule\": [[constraint, ...], ...]}: "
              "Unleash's constraint objects; any set may match, all constraints of a set must. "
              "Operators, semantics and bounds: docs/targeting.md.", conditional=True),
    Operation("DELETE", GROUP + "/rule", rm_group_rule, Success,
              "Remove the group's targeting rule", "groups", errors=(e.GroupNotFound,),
              description="Only the explicit members are in the group again.",
              conditional=True),
    Operation("POST", GROUP + "/subjects/{subject_id}", add_subject_to_group, Success,
              "Add a subject to a group", "groups",
              errors=(e.GroupNotFound, e.SubjectNotFound, e.SubjectAlreadyInGroup)),
    Operation("POST", GROUP + "/subjects", add_subjects_to_group, MembersAdded,
              "Add many subjects to a group in one transaction", "groups", 201,
              body=list[SubjectId],
              errors=(e.GroupNotFound, e.SubjectNotFound, e.SubjectAlreadyInGroup,
                      e.ValidationError),
              description="Body: a JSON list of subject ids. All or nothing, one revision; "
              "each joins last, in the given order (where two of a subject's groups override "
              "a feature, the one joined last wins)."),
    Operation("DELETE", GROUP + "/subjects/{subject_id}", rm_subject_from_group, Success,
              "Remove a subject from a group", "groups",
              errors=(e.GroupNotFound, e.SubjectNotFound, e.SubjectNotInGroup)),
    Operation("POST", GROUP + "/overrides/{feature}", add_group_override, Success,
              "Override a feature for the group's members", "groups", query=VariantQuery,
              errors=(e.GroupNotFound, e.FeatureNotFound, e.VariantNotFound),
              description="Replaces the group's existing override of the feature, if any.",
              conditional=True),
    Operation("DELETE", GROUP + "/overrides/{feature}", rm_group_override, Success,
              "Remove a group override", "groups",
              errors=(e.GroupNotFound, e.OverrideNotFound), conditional=True),
    # A/B tests
    Operation("GET", "/v1/abtests", list_abtests, AbTestNames, "List A/B tests", "abtests"),
    Operation("GET", "/v1/abtests/{test_name}", get_abtest, AbTestEnvelope, "Get an A/B test",
              "abtests", errors=(e.AbTestNotFound,), conditional=True),
    Operation("DELETE", "/v1/abtests/{test_name}", rm_abtest, Success,
              "Delete an ended or not yet started A/B test", "abtests",
              errors=(e.AbTestNotFound, e.AbTestIsLive), conditional=True),
    Operation("POST", "/v1/abtests/{test_name}/stop", stop_abtest, Success,
              "Stop a running A/B test now", "abtests", errors=(e.AbTestNotFound, e.AbTestNotLive),
              description="The test ends at the moment of the write; its groups keep their "
              "buckets, so assignments stay readable.", conditional=True),
    Operation("POST", "/v1/abtests", add_abtest, Success, "Create an A/B test", "abtests", 201,
              body=AbTestBody,
              errors=(e.AbTestExists, e.ValidationError, e.FeatureNotFound, e.VariantNotFound,
                      e.GroupNotFound),
              description="start and end: YYYY-MM-DD (midnight UTC, as in 0.2.1) or ISO 8601 "
              "datetimes (no offset = UTC); start omitted or at most 5 minutes in the past "
              "means now. Proportions: for every group or none (equal). audience: a group; "
              "only its members (explicit or by rule) take part."),
    Operation("PUT", "/v1/abtests/{test_name}/audience", set_abtest_audience, Success,
              "Change an A/B test's audience", "abtests", query=AudienceQuery,
              errors=(e.AbTestNotFound, e.GroupNotFound),
              description="audience=GROUP: only the group's members take part; audience= "
              "(empty): everyone in the test's buckets.", conditional=True),
    Operation("PUT", "/v1/abtests/{test_name}/auto-stop", set_abtest_auto_stop, Success,
              "Let an A/B test stop itself when its health turns red", "abtests",
              query=AutoStopQuery, errors=(e.AbTestNotFound,), conditional=True,
              description="enabled=true: a check (every 15 s on the admin server) that finds "
              "the test red stops it, the write's actor saying why (docs/experiments.md). "
              "Off by default."),
    # History
    Operation("GET", "/v1/changes", changes, ChangePage,
              "The change log: who changed what, oldest first", "history",
              query=ChangesQuery, errors=(e.ValidationError,), replica=True,
              description="Paginate with after=next_after. gone=true: rows after `after` were "
              "pruned by retention. Several filters keep the writes touching all of their "
              "names (feature=f&group=g: g's override of f, not every write to f or g). "
              "Reader role."),
    Operation("POST", "/v1/changes/{revision}/revert", revert_change, RevertPreview,
              "Revert one change, or preview what reverting it would change", "history",
              query=RevertQuery,
              errors=(e.ChangeNotFound, e.RevertRefused, e.ValidationError),
              description="Puts back what the change at `revision` replaced (a feature's "
              "default, variants, values or kill switch; a rollout; a group's overrides or "
              "rule; a subject's weight or groups) in one write with its own revision "
              "(`written`). Refused (409 RevertRefused, saying why) when a later change "
              "touched the same entity, for A/B tests, creations and removals of features, "
              "groups and subjects, and for changes written before flaggery 0.4 recorded what "
              "they replaced. preview=true writes nothing. A reverted rollout gets exactly its "
              "old buckets back while the bucket weights are unchanged. Admin role."),
    Operation("POST", FEATURE + "/restore", restore_feature, RevertPreview,
              "Restore a feature as it was at a revision, or preview it", "history",
              query=RestoreQuery, errors=(e.RevertRefused, e.ValidationError),
              description="Puts the feature (default, variants, values, kill switch), its "
              "rollout and every group's override of it back as they were at `revision`, in "
              "one write (`written`); A/B tests are left as they are. preview=true writes "
              "nothing. Admin role."),
    # Revision
    Operation("GET", "/v1/revision", revision, Revision,
              "The database's revision and this process's snapshot revision", "ops"),
)  # fmt: skip
