"""Admin operations on features and their variants."""

from __future__ import annotations

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
from flaggery.store.database import Database, WriteTransaction
from flaggery.store.queries import encode_value, read_features
from flaggery.store.records import FeatureRecord
from flaggery.store.validation import check_name, check_variant_name, check_variant_value

__all__ = ["FeaturesAdmin", "require_feature", "require_variant"]


class FeaturesAdmin:
    _db: Database

    async def add_feature(self, feature_name: str) -> None:
        check_name("feature", feature_name)
        async with self._db.write("add_feature") as tx:
            if await _read_feature(tx.conn, feature_name) is not None:
                raise FeatureExists(f"Feature {feature_name!r} exists already.")
            await tx.conn.execute(insert(t.features).values(name=feature_name))
            tx.record(FeatureFact(feature_name, Feature(feature_name, ())))

    async def rm_feature(self, feature_name: str) -> None:
        async with self._db.write("rm_feature") as tx:
            feature = await require_feature(tx.conn, feature_name)
            if feature.variants:
                names = ", ".join(repr(v) for v in feature.variants)
                raise FeatureHasChildren(
                    f"Feature {feature_name!r} still has variants {names}: remove them first."
                )
            await tx.conn.execute(delete(t.features).where(t.features.c.name == feature_name))
            tx.record(FeatureFact(feature_name, None))

    async def list_features(self) -> list[str]:
        async with self._db.read() as conn:
            return list((await conn.execute(select(t.features.c.name).order_by("name"))).scalars())

    async def get_feature(self, feature_name: str) -> FeatureRecord:
        async with self._db.read() as conn:
            feature = await require_feature(conn, feature_name)
        return FeatureRecord(feature.name, list(feature.variants), feature.default, feature.values)

    async def add_variant(
        self,
        variant_name: str,
        feature_name: str,
        make_default: bool = False,
        value: JsonValue | None = None,
    ) -> None:
        """Add a variant; ``value`` (bool, number, string or JSON object) is what OpenFeature
        clients receive for it, its name if None. ValidationError for a value of another type."""
        check_variant_name(variant_name)
        checked = None if value is None else check_variant_value(value)
        await self._add_variant(variant_name, feature_name, make_default, checked)

    async def add_disabling_variant(self, feature_name: str, make_default: bool = False) -> None:
        await self._add_variant(DISABLE, feature_name, make_default, None)

    async def set_variant_value(
        self, variant_name: str, feature_name: str, value: JsonValue | None
    ) -> None:
        """Give a variant a new value (None: its name again). One transaction, change-logged.
        VariantNotFound, or ValidationError for a bad value or the disabling variant."""
        checked = None if value is None else check_variant_value(value)
        if variant_name == DISABLE and checked is not None:
            raise ValidationError(
                f"{DISABLE!r} has no value: clients get their own default when disabled."
            )
        async with self._db.write("set_variant_value") as tx:
            feature = await require_variant(tx.conn, feature_name, variant_name)
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
        self, variant_name: str, feature_name: str, make_default: bool, value: JsonValue | None
    ) -> None:
        disabling = variant_name == DISABLE
        async with self._db.write("add_variant") as tx:
            feature = await require_feature(tx.conn, feature_name)
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

    async def rm_variant(self, variant_name: str, feature_name: str) -> None:
        async with self._db.write("rm_variant") as tx:
            await require_variant(tx.conn, feature_name, variant_name)
            reason = await _variant_use(tx.conn, feature_name, variant_name)
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

    async def set_default_feature_variant(self, feature_name: str, variant_name: str) -> None:
        async with self._db.write("set_default_feature_variant") as tx:
            feature = await require_variant(tx.conn, feature_name, variant_name)
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
    feature = await require_feature(conn, feature_name)
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


async def _variant_use(conn: AsyncConnection, feature: str, variant: str) -> str | None:
    """Why the variant cannot be removed, or None if nothing uses it."""
    checks = [
        ("the feature's default", t.features, t.features.c.name, t.features.c.default_variant),
        ("rolled out", t.rollouts, t.rollouts.c.feature, t.rollouts.c.variant),
        (
            "used by an A/B test",
            t.abtest_group_variants,
            t.abtest_group_variants.c.feature,
            t.abtest_group_variants.c.variant,
        ),
        (
            "a group override",
            t.group_overrides,
            t.group_overrides.c.feature,
            t.group_overrides.c.variant,
        ),
    ]
    for reason, table, feature_column, variant_column in checks:
        query = select(feature_column).where(feature_column == feature, variant_column == variant)
        if (await conn.execute(query.select_from(table).limit(1))).first() is not None:
            return reason
    return None
