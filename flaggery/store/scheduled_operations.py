"""What a scheduled step may do: the operations, their arguments (JSON objects, checked when
the step is created) and how each runs, through the ordinary admin methods."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from flaggery.errors import RolloutNotFound, ValidationError
from flaggery.store.tables import NAME_LENGTH
from flaggery.store.validation import aware_utc, check_proportion

__all__ = ["OPERATIONS", "Admin", "check_arguments", "features_of", "run_operation"]

OPERATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # operation: (required arguments, optional arguments)
    "set_rollout": (("feature",), ("variant", "proportion")),
    "kill_switch": (("feature", "on"), ()),
    "set_default_variant": (("feature", "variant"), ()),
    "add_group_override": (("group", "feature", "variant"), ()),
    "rm_group_override": (("group", "feature"), ()),
    "start_abtest": (("test", "end", "groups"), ("proportions", "audience")),
    "stop_abtest": (("test",), ()),
}
_NAMES = ("feature", "variant", "group", "test", "audience")


class Admin(Protocol):
    """The admin methods a step calls (AsyncFlaggery has them all)."""

    async def set_rollout(
        self, feature_name: str, variant_name: str | None, proportion: float | None
    ) -> None: ...
    async def add_rollout(self, variant_name: str, feature_name: str) -> None: ...
    async def kill_switch(self, feature_name: str) -> None: ...
    async def unkill(self, feature_name: str) -> None: ...
    async def set_default_feature_variant(self, feature_name: str, variant_name: str) -> None: ...
    async def add_group_override(
        self, group_name: str, feature_name: str, variant_name: str
    ) -> None: ...
    async def rm_group_override(self, group_name: str, feature_name: str) -> None: ...
    async def add_abtest(  # noqa: PLR0913 - add_abtest's own arguments
        self,
        test_name: str,
        start: datetime | None,
        end: datetime,
        groups: Mapping[str, Mapping[str, str]],
        proportions: list[float] | None = None,
        audience: str | None = None,
    ) -> None: ...
    async def stop_abtest(self, test_name: str) -> None: ...


def check_arguments(operation: str, arguments: Mapping[str, object]) -> dict[str, object]:
    """The arguments, checked (shapes only: what they name is checked when the step runs),
    as JSON-ready values; ValidationError saying what is wrong."""
    if operation not in OPERATIONS:
        raise ValidationError(f"Unknown operation {operation!r}: one of {', '.join(OPERATIONS)}.")
    required, optional = OPERATIONS[operation]
    missing = [name for name in required if name not in arguments]
    unknown = [name for name in arguments if name not in required + optional]
    if missing or unknown:
        raise ValidationError(
            f"{operation} takes {', '.join(required)}"
            + (f" (and optionally {', '.join(optional)})" if optional else "")
            + f"; missing: {missing or 'none'}, unknown: {unknown or 'none'}."
        )
    checked = {name: _check(name, value) for name, value in arguments.items()}
    if operation == "set_rollout" and not {"variant", "proportion"} & set(checked):
        raise ValidationError("set_rollout needs a variant, a proportion, or both.")
    return checked


def _check(name: str, value: object) -> object:
    if name in _NAMES:
        if not isinstance(value, str) or not 0 < len(value) <= NAME_LENGTH:
            shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
            raise ValidationError(
                f"{name} must be a string of 1 to {NAME_LENGTH} characters, got {shown!r}."
            )
        return value
    if name == "proportion":
        return check_proportion(value)
    if name == "on":
        if not isinstance(value, bool):
            raise ValidationError(f"on must be true or false, got {value!r}.")
        return value
    if name == "end":
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return aware_utc(moment, "end").isoformat()
    if name == "proportions":
        if not isinstance(value, list):
            raise ValidationError(f"proportions must be a list of numbers, got {value!r}.")
        return [check_proportion(share) for share in value]
    return _check_groups(value)


def _check_groups(value: object) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping) or not all(
        isinstance(group, str)
        and isinstance(variants, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in variants.items())
        for group, variants in value.items()
    ):
        raise ValidationError(
            'groups must map each test group to {feature: variant}, e.g. {"control": '
            '{"checkout": "old"}, "treatment": {"checkout": "new"}}.'
        )
    return {group: dict(variants) for group, variants in value.items()}


def features_of(operation: str, arguments: Mapping[str, object]) -> list[str]:
    """The features a step is about (for history filters)."""
    if operation == "start_abtest":
        groups = _check_groups(arguments["groups"])
        return sorted({feature for variants in groups.values() for feature in variants})
    feature = arguments.get("feature")
    return [feature] if isinstance(feature, str) else []


async def run_operation(admin: Admin, operation: str, arguments: Mapping[str, object]) -> None:
    """Make the step's write (inside the step's own write, see flaggery.store.schedules)."""
    a = dict(arguments)
    match operation:
        case "set_rollout":
            variant, proportion = a.get("variant"), a.get("proportion")
            await _set_rollout(admin, str(a["feature"]), variant, proportion)
        case "kill_switch":
            await (admin.kill_switch if a["on"] else admin.unkill)(str(a["feature"]))
        case "set_default_variant":
            await admin.set_default_feature_variant(str(a["feature"]), str(a["variant"]))
        case "add_group_override":
            await admin.add_group_override(str(a["group"]), str(a["feature"]), str(a["variant"]))
        case "rm_group_override":
            await admin.rm_group_override(str(a["group"]), str(a["feature"]))
        case "start_abtest":
            proportions = a.get("proportions")
            audience = a.get("audience")
            await admin.add_abtest(
                str(a["test"]),
                None,
                datetime.fromisoformat(str(a["end"])),
                _check_groups(a["groups"]),
                [float(p) for p in proportions] if isinstance(proportions, list) else None,
                audience if isinstance(audience, str) else None,
            )
        case "stop_abtest":
            await admin.stop_abtest(str(a["test"]))
        case _:
            raise ValidationError(f"Unknown operation {operation!r}.")


async def _set_rollout(admin: Admin, feature: str, variant: object, proportion: object) -> None:
    """A rollout write; a feature without a rollout gets one first when a variant is given
    (both in the step's one write)."""
    variant_name = variant if isinstance(variant, str) else None
    share = float(proportion) if isinstance(proportion, int | float) else None
    if variant_name is not None:
        try:
            await admin.set_rollout(feature, variant_name, share)
        except RolloutNotFound:
            await admin.add_rollout(variant_name, feature)
            await admin.set_rollout(feature, variant_name, share)
        return
    await admin.set_rollout(feature, None, share)
