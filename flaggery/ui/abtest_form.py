"""The new-A/B-test form: one fieldset per group (name, share of the weight, feature/variant
rows), its field names, what it shows, and what it sends to `AsyncFlaggery.add_abtest`.

Fields are ``g<i>.name``, ``g<i>.percent``, ``g<i>.f<j>`` and ``g<i>.v<j>`` (group ``i``, row
``j``), with ``groups`` and ``pairs``: how many of each the form shows. "Add a group" and
"Add a feature" re-render the form with one more (htmx, GET /ui/abtests/form), keeping what
was typed; blank groups and rows are ignored. A mistake raises `FieldError` naming the field,
so the page shows it there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from flaggery.decimal_text import DecimalTextError, excerpt, parse_decimal, percent
from flaggery.errors import ValidationError

__all__ = [
    "MAX_GROUPS",
    "MAX_PAIRS",
    "DraftGroup",
    "FieldError",
    "Groups",
    "check_counts",
    "draft",
    "parse_groups",
]

MIN_GROUPS = 2
MAX_GROUPS = 20
"""Rows the form shows at most; the store takes more over REST."""
MAX_PAIRS = 20
_GROUP_NAME = re.compile(r"g([0-9]{1,2})\.name")  # [0-9]: \d also matches "٣"


class FieldError(Exception):
    """A mistake in one form field: ``error`` (a ValidationError, so the REST status) to show
    beside ``field`` (its name in the form)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.error = ValidationError(message)


@dataclass
class DraftGroup:
    """One group's fieldset as shown: its index, what was typed, and its feature rows."""

    index: int
    name: str = ""
    percent: str = ""
    pairs: list[tuple[str, str]] = field(default_factory=list)


def draft(form: Mapping[str, object] | None, add: str | None = None) -> list[DraftGroup]:
    """The groups the form shows: those in ``form`` (None: a new form), as many as its
    ``groups`` and ``pairs`` ask (at least 2 groups, 1 row each), plus one more group or row
    when ``add`` is "group" or "pair" (up to MAX_GROUPS and MAX_PAIRS)."""
    form = form or {}
    groups = max(MIN_GROUPS, _count(form, "groups"), *(i + 1 for i in _indices(form)))
    pairs = max(1, _count(form, "pairs"))
    if add == "group":
        groups += 1
    elif add == "pair":
        pairs += 1
    groups, pairs = min(groups, MAX_GROUPS), min(pairs, MAX_PAIRS)
    return [
        DraftGroup(
            i,
            _text(form, f"g{i}.name"),
            _text(form, f"g{i}.percent"),
            [(_text(form, f"g{i}.f{j}"), _text(form, f"g{i}.v{j}")) for j in range(pairs)],
        )
        for i in range(groups)
    ]


Groups = dict[str, dict[str, str]]
"""{group: {feature: variant}}, in the order of the form."""


def parse_groups(form: Mapping[str, object]) -> tuple[Groups, list[float] | None]:
    """The groups and their proportions (None: equal shares) for `add_abtest`. Raises
    FieldError for a group without a name or a feature without a variant (or the reverse), a
    repeated name, a share that is not a number from 0 to 100, shares given for some groups
    only, or counts that are not whole numbers; the store checks the rest."""
    check_counts(form)
    groups: Groups = {}
    shares: dict[str, float] = {}
    for group in draft(form):
        prefix = f"g{group.index}"
        filled = [(j, f, v) for j, (f, v) in enumerate(group.pairs) if f or v]
        if not (group.name or group.percent or filled):
            continue  # a blank fieldset
        if not group.name:
            raise FieldError(f"{prefix}.name", "Name this group.")
        if group.name in groups:
            raise FieldError(f"{prefix}.name", f"Two groups are named {group.name!r}.")
        for j, feature, variant in filled:
            if not feature:
                raise FieldError(f"{prefix}.f{j}", f"Choose the feature {variant!r} belongs to.")
            if not variant:
                raise FieldError(f"{prefix}.v{j}", f"Choose the variant of {feature!r}.")
        groups[group.name] = {feature: variant for _, feature, variant in filled}
        if group.percent:
            shares[group.name] = _share(f"{prefix}.percent", group.percent)
    if shares and len(shares) != len(groups):
        missing = next(i for i, g in enumerate(draft(form)) if g.name and g.name not in shares)
        raise FieldError(
            f"g{missing}.percent", "Give a share to every group, or to none (equal shares)."
        )
    return groups, [shares[name] for name in groups] if shares else None


def _share(name: str, text: str) -> float:
    value = percent(text)
    if value is None:
        raise FieldError(name, f"A share is a percentage from 0 to 100, got {excerpt(text)}.")
    return value / 100


def _indices(form: Mapping[str, object]) -> list[int]:
    found = (_GROUP_NAME.fullmatch(key) for key in form)
    return [int(match.group(1)) for match in found if match and int(match.group(1)) < MAX_GROUPS]


def check_counts(form: Mapping[str, object]) -> None:
    """Raises FieldError unless ``groups`` and ``pairs`` (how many fieldsets and rows the form
    shows) are blank or whole numbers (flaggery.decimal_text)."""
    for key in ("groups", "pairs"):
        text = _text(form, key)
        try:
            if text:
                parse_decimal(text, key)
        except DecimalTextError as error:
            raise FieldError(key, str(error)) from None


def _count(form: Mapping[str, object], key: str) -> int:
    """How many groups or rows the form shows; 0 for blank or bad text (check_counts
    refuses that before a form is read, and a page that shows the refusal still draws)."""
    text = _text(form, key)
    try:
        return parse_decimal(text, key)
    except DecimalTextError:
        return 0


def _text(form: Mapping[str, object], key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""
