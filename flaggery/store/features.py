"""Admin operations on features and their variants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import DISABLE, Feature, FeatureFact, JsonValue
from flaggery.errors import (
    FeatureExists,
    FeatureHasChildren,
    FeatureNotFound,
    ValidationError,
    VariantExists,
    VariantIsUsed,
    VariantNotFound,
)
from flaggery.store import tables as t
from flaggery.store.before_state import keep_before
from flaggery.store.conditions import require_unchanged
from flaggery.store.database import Database, WriteTransaction
from flaggery.store.queries import encode_value, read_features, read_rollouts
from flaggery.store.records import FeatureRecord
from flaggery.store.validation import check_name, check_variant_name, check_variant_value

__all__ = [
    "FeaturesAdmin",
    "check_variant",
    "require_feature",
    "require_variant",
]


class FeaturesAdmin:
    _db: Database

    async def add_feature(self, feature_name: str) -> None:
        """Create a feature with no variants and no default.

        Raises FeatureExists, ValidationError (names: 1-200 characters, no ``/``, no control
        characters, no leading or trailing spaces). One transaction.
        """
        check_name("feature", feature_name)
        async with self._db.write("add_feature") as tx:
            await keep_before(tx, "feature", feature_name)
            if await _read_feature(tx.conn, feature_name) is not None:
                raise FeatureExists(f"Feature {feature_name!r} exists already.")
            await tx.conn.execute(insert(t.features).values(name=feature_name))
            tx.record(FeatureFact(feature_name, Feature(feature_name, ())))

    async def rm_feature(self, feature_name: str, *, if_revision: int | None = None) -> None:
        """Retire a feature: remove it with its variants and default in one transaction.

        Raises FeatureNotFound, FeatureHasChildren (saying what) while a rollout, a running or
        future A/B test, or a group override uses it, EntityChanged (see `kill_switch`). Ended
        tests keep their records.
        """
        async with self._db.write("rm_feature") as tx:
            await keep_before(tx, "feature", feature_name)
            await require_feature(tx.conn, feature_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            uses = await _feature_uses(tx.conn, feature_name, tx.now)
            if uses:
                raise FeatureHasChildren(
                    f"Feature {feature_name!r} is still used by {'; '.join(uses)}: "
                    "remove those first."
                )
            await tx.conn.execute(delete(t.variants).where(t.variants.c.feature == feature_name))
            await tx.conn.execute(delete(t.features).where(t.features.c.name == feature_name))
            tx.record(FeatureFact(feature_name, None))

    async def list_features(self) -> list[str]:
        """Every feature name, sorted."""
        async with self._db.read() as conn:
            return list((await conn.execute(select(t.features.c.name).order_by("name"))).scalars())

    async def get_feature(self, feature_name: str) -> FeatureRecord:
        """The feature's name, its variant names (sorted), its default variant or None, its
        variants' values and whether its kill switch is on.

        Raises FeatureNotFound.
        """
        async with self._db.read() as conn:
            feature = await require_feature(conn, feature_name)
        return FeatureRecord(
            feature.name, list(feature.variants), feature.default, feature.values, feature.killed
        )

    async def add_variant(
        self,
        variant_name: str,
        feature_name: str,
        make_default: bool = False,
        value: JsonValue | None = None,
        *,
        if_revision: int | None = None,
    ) -> None:
        """Add ``variant_name`` to the feature; with ``make_default`` it also becomes the
        feature's default. ``value`` (bool, number, string or JSON object, at most 64 KiB as
        JSON) is what OpenFeature clients receive for it; None: its name.

        Raises FeatureNotFound, VariantExists, ValidationError (a bad name or value, or
        ``__DISABLE__``, which only `add_disabling_variant` creates), EntityChanged (see
        `kill_switch`). One transaction.
        """
        check_variant_name(variant_name)
        checked = None if value is None else check_variant_value(value)
        await self._add_variant(variant_name, feature_name, make_default, checked, if_revision)

    async def add_disabling_variant(
        self, feature_name: str, make_default: bool = False, *, if_revision: int | None = None
    ) -> None:
        """Add the reserved ``__DISABLE__`` variant to the feature; with ``make_default`` it
        also becomes the feature's default.

        Raises FeatureNotFound, VariantExists, EntityChanged (see `kill_switch`). One
        transaction.
        """
        await self._add_variant(DISABLE, feature_name, make_default, None, if_revision)

    async def set_variant_value(
        self,
        variant_name: str,
        feature_name: str,
        value: JsonValue | None,
        *,
        if_revision: int | None = None,
    ) -> None:
        """Give a variant a new value (None: its name again). One transaction, change-logged.
        VariantNotFound, ValidationError for a bad value or the disabling variant,
        EntityChanged (see `kill_switch`)."""
        checked = None if value is None else check_variant_value(value)
        if variant_name == DISABLE and checked is not None:
            raise ValidationError(
                f"{DISABLE!r} has no value: clients get their own default when disabled."
            )
        async with self._db.write("set_variant_value") as tx:
            await keep_before(tx, "feature", feature_name)
            feature = await require_variant(tx.conn, feature_name, variant_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            # Compared as JSON: True == 1 in Python, but they are different values.
            if encode_value(feature.values.get(variant_name)) == encode_value(checked):
                return
            await tx.conn.execute(
                update(t.variants)
                .where(t.variants.c.feature == feature_name, t.variants.c.name == variant_name)
                .values(value=encode_value(checked))
            )
            await _record_feature(tx, feature_name)

    async def _add_variant(
        self,
        variant_name: str,
        feature_name: str,
        make_default: bool,
        value: JsonValue | None,
        if_revision: int | None,
    ) -> None:
        disabling = variant_name == DISABLE
        async with self._db.write("add_variant") as tx:
            await keep_before(tx, "feature", feature_name)
            feature = await require_feature(tx.conn, feature_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            if variant_name in feature.variants:
                raise VariantExists(
                    f"Feature {feature_name!r} has a variant {variant_name!r} already."
                )
            await tx.conn.execute(
                insert(t.variants).values(
                    feature=feature_name,
                    name=variant_name,
                    disabling=disabling,
                    value=encode_value(value),
                )
            )
            if make_default:
                await _set_default(tx.conn, feature_name, variant_name)
            await _record_feature(tx, feature_name)

    async def kill_switch(self, feature_name: str, *, if_revision: int | None = None) -> None:
        """Turn the feature's kill switch on: every subject and targeting key gets
        ``__DISABLE__`` of it, whatever its default, rollout, A/B tests and group overrides say
        (explanations say source "killed"). Those are kept as they are, and changes to them
        are still accepted, so `unkill` restores exactly what they give. Nothing is written if
        the switch is on already.

        ``if_revision`` (every feature write takes it): write only if nothing changed the
        feature after that revision (itself, its rollout, a test or group override setting
        it); else EntityChanged, saying which writes did. Raises FeatureNotFound,
        ValidationError (a bad if_revision). One transaction, one revision.
        """
        await self._set_killed("kill_switch", feature_name, True, if_revision)

    async def unkill(self, feature_name: str, *, if_revision: int | None = None) -> None:
        """Turn the feature's kill switch off: subjects get again exactly what the default,
        rollout (with its buckets), A/B tests and group overrides give now. Nothing is written
        if the switch is off already. Raises FeatureNotFound, EntityChanged (see
        `kill_switch`). One transaction, one revision."""
        await self._set_killed("unkill", feature_name, False, if_revision)

    async def _set_killed(
        self, operation: str, feature_name: str, killed: bool, if_revision: int | None
    ) -> None:
        async with self._db.write(operation) as tx:
            await keep_before(tx, "feature", feature_name)
            feature = await require_feature(tx.conn, feature_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            if feature.killed == killed:
                return
            await tx.conn.execute(
                update(t.features).where(t.features.c.name == feature_name).values(killed=killed)
            )
            await _record_feature(tx, feature_name)

    async def rm_variant(
        self, variant_name: str, feature_name: str, *, if_revision: int | None = None
    ) -> None:
        """Remove a variant nothing uses.

        Raises FeatureNotFound, VariantNotFound, VariantIsUsed (the message says by what: the
        default, the rollout, an A/B-test group or a group override), EntityChanged (see
        `kill_switch`). One transaction.
        """
        async with self._db.write("rm_variant") as tx:
            await keep_before(tx, "feature", feature_name)
            await require_variant(tx.conn, feature_name, variant_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            reason = await _variant_use(tx.conn, feature_name, variant_name, tx.now)
            if reason:
                raise VariantIsUsed(
                    f"Variant {variant_name!r} of feature {feature_name!r} is {reason}: "
                    "change that first."
                )
            await tx.conn.execute(
                delete(t.variants).where(
                    t.variants.c.feature == feature_name, t.variants.c.name == variant_name
                )
            )
            await _record_feature(tx, feature_name)

    async def set_default_feature_variant(
        self, feature_name: str, variant_name: str, *, if_revision: int | None = None
    ) -> None:
        """Make ``variant_name`` the feature's default: what subjects get when nothing else
        applies (docs/semantics.md, "Resolution").

        Raises FeatureNotFound, VariantNotFound, EntityChanged (see `kill_switch`). One
        transaction.
        """
        async with self._db.write("set_default_feature_variant") as tx:
            await keep_before(tx, "feature", feature_name)
            feature = await require_variant(tx.conn, feature_name, variant_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            if feature.default == variant_name:
                return
            await _set_default(tx.conn, feature_name, variant_name)
            await _record_feature(tx, feature_name)


async def _read_feature(conn: AsyncConnection, name: str) -> Feature | None:
    return (await read_features(conn, name)).get(name)


async def require_feature(conn: AsyncConnection, name: str) -> Feature:
    feature = await _read_feature(conn, name)
    if feature is None:
        raise FeatureNotFound(f"Feature {name!r} does not exist.")
    return feature


async def require_variant(conn: AsyncConnection, feature_name: str, variant_name: str) -> Feature:
    """The feature, if it exists and has the variant; else FeatureNotFound or VariantNotFound."""
    features = await read_features(conn, feature_name)
    return check_variant(features, feature_name, variant_name)


def check_variant(features: Mapping[str, Feature], feature_name: str, variant_name: str) -> Feature:
    """The feature, if it exists among `features` and has the variant; else FeatureNotFound
    or VariantNotFound."""
    feature = features.get(feature_name)
    if feature is None:
        raise FeatureNotFound(f"Feature {feature_name!r} does not exist.")
    if variant_name not in feature.variants:
        known = ", ".join(repr(v) for v in feature.variants) or "none yet"
        raise VariantNotFound(
            f"Feature {feature_name!r} has no variant {variant_name!r}. Variants: {known}."
        )
    return feature


async def _set_default(conn: AsyncConnection, feature_name: str, variant_name: str) -> None:
    await conn.execute(
        update(t.features)
        .where(t.features.c.name == feature_name)
        .values(default_variant=variant_name)
    )


async def _record_feature(tx: WriteTransaction, feature_name: str) -> None:
    tx.record(FeatureFact(feature_name, await require_feature(tx.conn, feature_name)))


async def _variant_use(
    conn: AsyncConnection, feature: str, variant: str, now: datetime
) -> str | None:
    """Why the variant cannot be removed, or None if nothing uses it (ended tests don't)."""
    checks = [
        ("the feature's default", t.features.c.name, t.features.c.default_variant),
        ("rolled out", t.rollouts.c.feature, t.rollouts.c.variant),
        ("a group override", t.group_overrides.c.feature, t.group_overrides.c.variant),
    ]
    for reason, feature_column, variant_column in checks:
        query = select(feature_column).where(feature_column == feature, variant_column == variant)
        if (await conn.execute(query.limit(1))).first() is not None:
            return reason
    tests = await _unended_tests(conn, feature, now, variant)
    return f"used by A/B test {tests[0]!r} (running or not started)" if tests else None


async def _feature_uses(conn: AsyncConnection, feature: str, now: datetime) -> list[str]:
    """What keeps the feature from being retired, in words; empty if nothing."""
    uses = []
    if (await read_rollouts(conn, feature)).get(feature) is not None:
        uses.append("its rollout (rm_rollout)")
    tests = await _unended_tests(conn, feature, now)
    if tests:
        uses.append(f"A/B tests {tests} (stop_abtest, rm_abtest)")
    query = select(t.group_overrides.c.group).where(t.group_overrides.c.feature == feature)
    groups = sorted((await conn.execute(query)).scalars())
    if groups:
        uses.append(f"overrides in groups {groups} (rm_group_override)")
    return uses


async def _unended_tests(
    conn: AsyncConnection, feature: str, now: datetime, variant: str | None = None
) -> list[str]:
    """Names of running or future tests setting the feature (to `variant`, if given)."""
    v = t.abtest_group_variants
    query = (
        select(t.abtests.c.name)
        .distinct()
        .join(v, v.c.test == t.abtests.c.name)
        .where(v.c.feature == feature, t.abtests.c.end > now)
        .order_by(t.abtests.c.name)
    )
    if variant is not None:
        query = query.where(v.c.variant == variant)
    return list((await conn.execute(query)).scalars())
