"""What a destructive dashboard action will do, named before it is done.

Every removal, stop and kill posts first without ``confirm``: the server answers a
confirmation page naming the object and its effect ("Stop checkout-ab: 9,998 subjects of
checkout go from new_flow (A/B test checkout-ab, group B) to old (the rollout)"), computed
by the engine from the served snapshot (`Snapshot.moves`), whose button posts the same form
again with ``confirm=on`` and the snapshot's revision: a change made in between is refused
(EntityChanged) rather than applied with an effect nobody saw. A post without ``confirm``
never writes, whatever sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request

from flaggery.decimal_text import DecimalTextError, parse_decimal
from flaggery.engine import Snapshot
from flaggery.engine.model import (
    AbTestFact,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    RolloutFact,
)
from flaggery.engine.sign_in_plan import PlannedSubject, plan_sign_ins
from flaggery.errors import (
    AbTestNotFound,
    FeatureNotFound,
    GroupNotFound,
    OverrideNotFound,
    RolloutNotFound,
    SubjectNotFound,
    ValidationError,
)
from flaggery.store.validation import MIN_SUBJECT_ID
from flaggery.ui.labels import effect, variant_label
from flaggery.ui.paste import PastedSubject, not_members, pasted_members, pasted_text

__all__ = ["Effect", "Unconfirmed", "add_subjects", "ask", "describers"]

NOTHING_MOVES = "No subject's and no hashed key's variant changes."


class Effect(msgspec.Struct, frozen=True):
    """The confirmation page's title (the action and its object) and its effect, in words."""

    title: str
    sentences: list[str]
    fields: dict[str, str] = {}
    """Form fields the confirming post sends instead of the ones posted (an upload's text)."""
    destructive: bool = True
    """False for a write that only adds (a preview: the button is not red)."""


class Unconfirmed(Exception):
    """The action was posted without ``confirm``: show `effect` and ask."""

    def __init__(self, effect: Effect) -> None:
        super().__init__(effect.title)
        self.effect = effect


Describer = Callable[[Snapshot, str, FormData], Effect]
"""(snapshot, the path's name, the form) -> the action's effect."""


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _moved(snapshot: Snapshot, *facts: Fact) -> list[str]:
    return effect(snapshot.moves(list(facts))) or [NOTHING_MOVES]


def _feature(snapshot: Snapshot, name: str) -> Feature:
    feature = snapshot.config.features.get(name)
    if feature is None:
        raise FeatureNotFound(f"Feature {name!r} does not exist.")
    return feature


def rm_variant(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _feature(snapshot, name)
    variant = _text(form, "variant")
    served = sum(r.subjects for r in snapshot.reach(name).reaches if r.via.variant == variant)
    said = f"{served:,} subjects get it now" if served else "No subject gets it now"
    sentence = (
        f"{said}; the removal is refused while the default, the rollout, an A/B test or "
        "an override uses it."
    )
    return Effect(f"Remove variant {variant_label(variant)} of {name}", [sentence])


def rm_rollout(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    if name not in snapshot.config.rollouts:
        raise RolloutNotFound(f"Feature {name!r} has no rollout.")
    return Effect(f"Remove the rollout of {name}", _moved(snapshot, RolloutFact(name, None)))


def kill(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    feature = _feature(snapshot, name)
    killed = msgspec.structs.replace(feature, killed=True)
    sentences = _moved(snapshot, FeatureFact(name, killed))
    sentences.append(
        "The default, rollout, A/B tests and overrides are kept: turning the switch off "
        "restores them."
    )
    return Effect(f"Kill {name}", sentences)


def unkill(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    feature = _feature(snapshot, name)
    live = msgspec.structs.replace(feature, killed=False)
    return Effect(f"Turn the kill switch of {name} off", _moved(snapshot, FeatureFact(name, live)))


def rm_feature(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _feature(snapshot, name)
    sentences = _moved(snapshot, FeatureFact(name, None), RolloutFact(name, None))
    sentences.append(f"Clients asking for {name} get their own default value.")
    return Effect(f"Remove feature {name} with its variants", sentences)


def _test(snapshot: Snapshot, name: str) -> None:
    if name not in snapshot.config.abtests:
        raise AbTestNotFound(f"A/B test {name!r} does not exist.")


def stop_abtest(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _test(snapshot, name)
    sentences = _moved(snapshot, AbTestFact(name, None))
    sentences.append("Its groups keep their buckets, so who was in which group stays readable.")
    return Effect(f"Stop {name}", sentences)


def rm_abtest(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _test(snapshot, name)
    sentences = _moved(snapshot, AbTestFact(name, None))
    sentences.append("Its groups, buckets and exposure counts are deleted.")
    return Effect(f"Delete A/B test {name}", sentences)


def _group(snapshot: Snapshot, name: str) -> Group:
    group = snapshot.config.groups.get(name)
    if group is None:
        raise GroupNotFound(f"Group {name!r} does not exist.")
    return group


def rm_member(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _group(snapshot, name)
    subject = _text(form, "subject")
    try:
        moved = snapshot.membership_moves(
            parse_decimal(subject, "A subject id", low=MIN_SUBJECT_ID), name
        )
    except DecimalTextError as error:
        raise ValidationError(str(error)) from None
    return Effect(
        f"Remove subject {subject} from group {name}",
        effect(moved, "subjects") or [NOTHING_MOVES],
    )


def rm_override(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    group = _group(snapshot, name)
    feature = _text(form, "feature")
    overrides = dict(group.overrides)
    if feature not in overrides:
        raise OverrideNotFound(f"Group {name!r} does not override {feature!r}.")
    del overrides[feature]
    changed = msgspec.structs.replace(group, overrides=overrides)
    return Effect(
        f"Remove the override of {feature} for group {name}",
        _moved(snapshot, GroupFact(name, changed)),
    )


def rm_rule(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _group(snapshot, name)
    return Effect(
        f"Remove the targeting rule of group {name}",
        [
            "Requests whose context matched the rule stop getting the group's overrides; "
            "how many depends on each request's context, so it is not counted. Joined "
            "members keep them."
        ],
    )


def rm_group(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    _group(snapshot, name)
    sentences = _moved(snapshot, GroupFact(name, None))
    sentences.append("Its members leave it and its overrides are deleted.")
    return Effect(f"Remove group {name}", sentences)


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, ids[:5]))
    return shown + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")


def _existing(snapshot: Snapshot, ids: Sequence[int]) -> list[int]:
    found = []
    for sid in ids:
        try:
            snapshot.subject(sid)
        except SubjectNotFound:
            continue
        found.append(sid)
    return found


def add_subjects(
    snapshot: Snapshot, text: str, subjects: Sequence[PastedSubject], weights: Mapping[int, int]
) -> Effect:
    """The preview of pasted subjects: how many, whether the write will be refused, and for
    lines with a targeting key which keep the key's variants (`plan_sign_ins` over the bucket
    `weights`, {bucket id: weight}, read just before) and which fall back, and why."""
    ids = [sid for sid, _, _ in subjects]
    weight = sum(w for _, w, _ in subjects)
    sentences = [
        f"{len(ids):,} new subjects ({_ids(ids)}), total weight {weight:,}, in one "
        "transaction: each goes to the lightest bucket, as one-by-one adds would (a subject "
        "removed in the last 90 days goes back to its own bucket)."
    ]
    if len(set(ids)) != len(ids):
        sentences.append("An id appears more than once: the write will be refused.")
    existing = _existing(snapshot, ids)
    if existing:
        sentences.append(
            f"{len(existing):,} of them exist already ({_ids(existing)}): the write will be "
            "refused and add none."
        )
    if not snapshot.config.buckets:
        sentences.append("There is no bucket yet: add buckets first, or the write is refused.")
    elif any(key is not None for _, _, key in subjects):
        sentences += _sign_ins(snapshot, subjects, weights)
    noun = "subject" if len(ids) == 1 else "subjects"
    return Effect(f"Add {len(ids):,} {noun}", sentences, {"ids": text}, destructive=False)


def _sign_ins(
    snapshot: Snapshot, subjects: Sequence[PastedSubject], weights: Mapping[int, int]
) -> list[str]:
    config = snapshot.config
    plan = plan_sign_ins(weights, config.buckets, config.key_salt, subjects, config.key_splits)
    keyed = [p for p in plan if p.key is not None]
    kept = [p for p in keyed if p.kept]
    sentences = [
        f"{len(keyed):,} come with the targeting key they had before signing in: a subject "
        "in its key's bucket keeps every variant the key had (rollouts and A/B tests).",
        f"{len(kept):,} go to their key's bucket"
        + (": " + _placements(kept) + "." if kept else "."),
    ]
    fallen = [p for p in keyed if not p.kept]
    sentences += [f"Subject {p.subject} (key {p.key!r}): {p.reason}" for p in fallen[:5]]
    fell_back = len(fallen)
    if fell_back > 5:
        sentences.append(f"{fell_back - 5:,} more go to the lightest bucket for the same reason.")
    return sentences


def _placements(plans: Sequence[PlannedSubject]) -> str:
    shown = ", ".join(f"{p.subject} in bucket {p.bucket}" for p in plans[:5])
    return shown + (f" and {len(plans) - 5:,} more" if len(plans) > 5 else "")


def add_members(snapshot: Snapshot, name: str, form: FormData) -> Effect:
    group = _group(snapshot, name)
    text = pasted_text(form, "members")
    ids, keys = pasted_members(text)
    existing = set(_existing(snapshot, ids))
    unknown = [sid for sid in ids if sid not in existing]
    members = [sid for sid in existing if name in snapshot.subject(sid).groups]
    overrides = ", ".join(f"{f} = {variant_label(v)}" for f, v in sorted(group.overrides.items()))
    sentences = [
        f"{len(ids):,} subjects ({_ids(ids)}) join group {name} in one transaction, each "
        "joining last: where two of a subject's groups override a feature, this one wins.",
        f"They get its overrides: {overrides}."
        if overrides
        else "The group overrides nothing yet.",
    ]
    if keys:
        sentences.append(not_members(keys) + " The write will be refused.")
    if unknown:
        sentences.append(
            f"{len(unknown):,} are not subjects ({_ids(unknown)}): the write will be refused."
        )
    if members:
        sentences.append(
            f"{len(members):,} are members already ({_ids(sorted(members))}): the write will "
            "be refused."
        )
    return Effect(
        f"Add {len(ids):,} subjects to group {name}",
        sentences,
        {"members": text},
        destructive=False,
    )


describers: dict[str, Describer] = {
    "add_members": add_members,
    "rm_variant": rm_variant,
    "rm_rollout": rm_rollout,
    "kill": kill,
    "unkill": unkill,
    "rm_feature": rm_feature,
    "stop_abtest": stop_abtest,
    "rm_abtest": rm_abtest,
    "rm_member": rm_member,
    "rm_override": rm_override,
    "rm_rule": rm_rule,
    "rm_group": rm_group,
}


def ask(snapshot: Snapshot, action: str, request: Request, form: FormData) -> None:
    """Raise Unconfirmed with the action's effect unless the form says ``confirm=on``."""
    if form.getlist("confirm") == ["on"]:
        return
    raise Unconfirmed(describers[action](snapshot, request.path_params.get("name", ""), form))
