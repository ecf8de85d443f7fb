"""Table definitions: the single source of truth for the schema (Alembic migrations match it).

Names are the primary keys of features, variants, groups and A/B tests, as they are in the
REST API; there are no renames, so surrogate ids would only add joins. Bucket weights are
stored, and updated in the same transaction as the subjects they sum, so placing a subject
never needs a SUM over all subjects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect

__all__ = [
    "abtest_group_buckets",
    "abtest_group_variants",
    "abtest_groups",
    "abtests",
    "assignment_counts",
    "buckets",
    "change_log",
    "change_touches",
    "exposed_subjects",
    "exposed_units",
    "exposure_counts",
    "features",
    "group_members",
    "group_overrides",
    "groups",
    "metadata",
    "release_plans",
    "removed_subjects",
    "rollout_buckets",
    "rollout_deals",
    "rollouts",
    "schedule_steps",
    "state",
    "subjects",
    "variants",
    "webhooks",
]

NAME_LENGTH = 200


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps.

    SQLite has no time zones, so values are stored as naive UTC there and tagged on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _name(column: str, *args: Any, **kwargs: Any) -> Column[str]:
    return Column(column, String(NAME_LENGTH), *args, nullable=False, **kwargs)


state = Table(
    "flaggery_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
    Column(
        "database_id",
        String(32),
        nullable=True,
        comment="Random identity given at migration: another database, another id.",
    ),
    Column(
        "change_id",
        String(32),
        nullable=True,
        comment="Random id of the latest write (change_log.change_id of revision).",
    ),
    Column(
        "key_salt",
        String(32),
        nullable=True,
        comment="Random 16-byte salt (hex) targeting keys are hashed with; never changed.",
    ),
    comment="One row. Every write increments revision first, which also serializes writers.",
)

change_log = Table(
    "change_log",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("operation", String(64), nullable=False),
    Column("payload", Text, nullable=False, comment="JSON list of facts (flaggery.engine.model)"),
    Column(
        "change_id",
        String(32),
        nullable=True,
        comment="Random id of this write; NULL for writes made before revision 0002.",
    ),
    Column(
        "actor",
        String(200),
        nullable=True,
        comment="Token name or Python actor of this write; NULL for writes before 0005.",
    ),
    Column(
        "before",
        Text,
        nullable=True,
        comment="JSON list of facts: what the write changed, before it; NULL before 0015",
    ),
)

change_touches = Table(
    "change_touches",
    metadata,
    Column("kind", String(8), primary_key=True, comment="feature, group, test, subject or *"),
    Column("name", String(NAME_LENGTH), primary_key=True, comment="'' for kind *"),
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Index(None, "revision"),
    comment="What each change-log row touches, for filtered history (flaggery.store.change_index).",
)

buckets = Table(
    "buckets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("weight", BigInteger, nullable=False, default=0),
    Index(None, "weight", "id"),
)

bucket_splits = Table(
    "bucket_splits",
    metadata,
    Column(
        "start",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="the bucket count before the growth",
    ),
    Column(
        "multiple",
        Integer,
        nullable=False,
        comment="each bucket became this many: itself and multiple - 1 children",
    ),
    comment="growths that split every bucket: targeting keys follow them; none before 0016",
)

subjects = Table(
    "subjects",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("weight", BigInteger, nullable=False),
    # Not indexed: nothing reads subjects by bucket (migration 0007).
    Column("bucket_id", Integer, ForeignKey("buckets.id"), nullable=False),
)

removed_subjects = Table(
    "removed_subjects",
    metadata,
    # A removed subject's bucket, so the same id registered again lands where it was (its A/B
    # test arm and rollout state with it). Kept 90 days (flaggery.store.removed_subjects;
    # migration 0009).
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("bucket_id", Integer, ForeignKey("buckets.id"), nullable=False),
    Column("removed_at", UTCDateTime, nullable=False, index=True),
)

features = Table(
    "features",
    metadata,
    _name("name", primary_key=True),
    Column("default_variant", String(NAME_LENGTH), nullable=True),
    # The kill switch (migration 0009): resolution's last layer, over everything else.
    Column("killed", Boolean, nullable=False, default=False, server_default=false()),
)

variants = Table(
    "variants",
    metadata,
    _name("feature", ForeignKey("features.name"), primary_key=True),
    _name("name", primary_key=True),
    Column("disabling", Boolean, nullable=False, default=False),
    Column("value", Text, nullable=True, comment="JSON; NULL means the value is the name"),
)

rollouts = Table(
    "rollouts",
    metadata,
    _name("feature", primary_key=True),
    _name("variant"),
    Column("proportion", Float, nullable=False),
    Column(
        "audience",
        String(NAME_LENGTH),
        nullable=True,
        comment="the group the rollout's variant goes to; NULL: every unit in its buckets",
    ),
    # No foreign key to groups: on SQLite adding one rebuilds the table, which the tables
    # referencing rollouts forbid. The store checks the group on write, and rm_group refuses
    # to remove an audience (GroupIsUsed).
    Column(
        "carry",
        Float,
        nullable=False,
        default=0.0,
        server_default="0",
        comment="share of new buckets owed (+) or overpaid (-): carried across increase_buckets",
    ),
    Column(
        "restore",
        Text,
        nullable=True,
        comment="JSON: buckets held at proportions moved away from, while the weights hold",
    ),
    ForeignKeyConstraint(["feature", "variant"], ["variants.feature", "variants.name"]),
)

rollout_deals = Table(
    "rollout_deals",
    metadata,
    _name("feature", ForeignKey("rollouts.feature"), primary_key=True),
    Column("first_bucket", Integer, primary_key=True),
    Column("last_bucket", Integer, nullable=False),
    Column(
        "joined",
        Text,
        nullable=False,
        comment="one character per bucket first..last: '1' taken, '0' left",
    ),
    comment="per increase_buckets call, which new buckets the rollout took: orders them",
)

rollout_buckets = Table(
    "rollout_buckets",
    metadata,
    _name("feature", ForeignKey("rollouts.feature"), primary_key=True),
    Column("bucket_id", Integer, ForeignKey("buckets.id"), primary_key=True),
)

abtests = Table(
    "abtests",
    metadata,
    _name("name", primary_key=True),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column(
        "audience",
        String(NAME_LENGTH),
        nullable=True,
        comment="the group the test's variants go to; NULL: every unit in its buckets",
    ),
    Column(
        "auto_stop",
        Boolean,
        nullable=False,
        server_default=false(),
        comment="stop the test when its health turns red",
    ),
)

abtest_groups = Table(
    "abtest_groups",
    metadata,
    _name("test", ForeignKey("abtests.name"), primary_key=True),
    _name("name", primary_key=True),
    Column("position", Integer, nullable=False),
    Column("proportion", Float, nullable=False),
    Column(
        "carry",
        Float,
        nullable=False,
        default=0.0,
        server_default="0",
        comment="share of new buckets owed (+) or overpaid (-): carried across increase_buckets",
    ),
)

abtest_group_variants = Table(
    "abtest_group_variants",
    metadata,
    _name("test", primary_key=True),
    _name("group", primary_key=True),
    _name("feature", primary_key=True),
    _name("variant"),
    # No foreign key to variants: an ended test keeps its record after its variants (or its
    # feature) are removed.
    ForeignKeyConstraint(["test", "group"], ["abtest_groups.test", "abtest_groups.name"]),
)

abtest_group_buckets = Table(
    "abtest_group_buckets",
    metadata,
    _name("test", primary_key=True),
    Column("bucket_id", Integer, ForeignKey("buckets.id"), primary_key=True),
    _name("group"),
    ForeignKeyConstraint(["test", "group"], ["abtest_groups.test", "abtest_groups.name"]),
)

groups = Table(
    "groups",
    metadata,
    _name("name", primary_key=True),
    Column(
        "rule",
        Text,
        nullable=True,
        comment="JSON: the targeting rule (a list of constraint sets); NULL: members only",
    ),
)

group_members = Table(
    "group_members",
    metadata,
    _name("group", ForeignKey("groups.name"), primary_key=True),
    Column("subject_id", BigInteger, ForeignKey("subjects.id"), primary_key=True),
    Column("joined", BigInteger, nullable=False, comment="revision of the join: orders overrides"),
    Index(None, "subject_id", "joined"),
)

group_overrides = Table(
    "group_overrides",
    metadata,
    _name("group", ForeignKey("groups.name"), primary_key=True),
    _name("feature", primary_key=True),
    _name("variant"),
    ForeignKeyConstraint(["feature", "variant"], ["variants.feature", "variants.name"]),
)


exposure_counts = Table(
    "exposure_counts",
    metadata,
    _name("test", primary_key=True),
    _name("test_group", primary_key=True, comment="the group the client reported seeing"),
    Column("hashed", Boolean, primary_key=True, comment="true: hashed targeting keys"),
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),
    Column("first", BigInteger, nullable=False, comment="first exposures of a unit in the test"),
    Column("repeats", BigInteger, nullable=False, comment="exposures of units seen before"),
    Column("misassigned", BigInteger, nullable=False, comment="reported group != assigned"),
    Column("early", BigInteger, nullable=False, comment="exposures timed before the start"),
    Column("late", BigInteger, nullable=False, comment="exposures timed after the end"),
    comment="Exposure counters (POST /v1/exposures), added to in one upsert per batch.",
)

assignment_counts = Table(
    "assignment_counts",
    metadata,
    _name("test", primary_key=True),
    _name("test_group", primary_key=True, comment="the group whose bucket the answer came from"),
    Column("served", BigInteger, nullable=False, comment="flags answers served while live"),
    comment="Assignments: answers the flags routes served per test group, added to per flush.",
)

exposed_units = Table(
    "exposed_units",
    metadata,
    _name("test", primary_key=True),
    Column("unit", String(300), primary_key=True, comment="'s:<subject id>' or 'k:<key>'"),
    comment="Every unit exposed to a test during its window: first exposures counted exactly.",
)

webhooks = Table(
    "webhooks",
    metadata,
    _name("name", primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False, comment="HMAC-SHA256 key of the signature header"),
    Column("feature", String(NAME_LENGTH), nullable=True, comment="filter; NULL: any"),
    Column("group", String(NAME_LENGTH), nullable=True, comment="filter; NULL: any"),
    Column("test", String(NAME_LENGTH), nullable=True, comment="filter; NULL: any"),
    Column("operation", String(64), nullable=True, comment="filter; NULL: any"),
    Column("delivered", BigInteger, nullable=False, comment="cursor: the last revision handled"),
    Column("failing_since", UTCDateTime, nullable=True, comment="first failure of this streak"),
    Column("failing", Boolean, nullable=False, default=False, server_default=false()),
    Column("last_error", Text, nullable=True),
    Column("leased_by", String(32), nullable=True, comment="the admin process delivering"),
    Column("leased_until", UTCDateTime, nullable=True),
    comment="Webhook subscriptions (flaggery.hooks): delivered from the change log.",
)

schedule_steps = Table(
    "schedule_steps",
    metadata,
    _name("schedule", primary_key=True),
    Column("step", Integer, primary_key=True, autoincrement=False),
    Column("due_at", UTCDateTime, nullable=False, comment="UTC instant the step is due"),
    Column("operation", String(64), nullable=False),
    Column("arguments", Text, nullable=False, comment="JSON object"),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="pending, applied, cancelled or failed",
    ),
    Column("created_by", String(200), nullable=False),
    Column("applied_revision", BigInteger, nullable=True),
    Column("late_seconds", Float, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "status", "due_at"),
    comment="Steps of scheduled changes, applied by an admin server when due.",
)

release_plans = Table(
    "release_plans",
    metadata,
    _name("feature", primary_key=True),
    _name("variant"),
    Column("steps", Text, nullable=False, comment="JSON [[proportion, hold s|null]]"),
    Column("status", String(16), nullable=False, comment="active, paused or done"),
    Column("step", Integer, nullable=False, comment="index of the current step; -1: none"),
    Column("next_at", UTCDateTime, nullable=True, comment="UTC; NULL unless active"),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False, comment="the last thing done, in words"),
    comment="Release plans: a rollout ramped step by step by the admin server.",
)

exposed_subjects = Table(
    "exposed_subjects",
    metadata,
    _name("test", primary_key=True),
    Column("chunk", BigInteger, primary_key=True, autoincrement=False, comment="subject id >> 16"),
    Column(
        "bits",
        LargeBinary,
        nullable=False,
        comment="8,192 bytes: bit (id & 0xFFFF) set once the subject was exposed",
    ),
    comment="Registered subjects exposed to a test during its window, one bit each.",
)
