"""Experiment health over HTTP: ``POST /v1/exposures`` (client role) and
``GET /v1/abtests/{test_name}/health`` (reader role).

Exposures are classified against this process's live snapshot (its allocation), validated
whole, and added to this process's tally, written to the database every flush interval
(flaggery.live.exposure_intake, flaggery.store.exposures): counts survive restarts, and every
admin and read-only server of the database adds to the same rows (an edge, which has no
database, refuses with NotAdmin). Health first writes this process's tally, so a client reads
its own exposures from the server it sent them to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from flaggery import errors as e
from flaggery.engine.health_report import AbTestHealth
from flaggery.http.endpoint import Call, Operation
from flaggery.store.exposures import health_from

__all__ = ["MAX_EXPOSURES_PER_BATCH", "OPERATIONS"]

MAX_EXPOSURES_PER_BATCH = 1000
_Name = Annotated[str, Meta(min_length=1, max_length=200)]


class ExposureIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    context_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=256,
            description="The targeting key (OpenTelemetry feature_flag.context.id): a "
            "registered subject's decimal id, or any key, hashed.",
        ),
    ]
    test: Annotated[_Name, Meta(description="The A/B test's name.")]
    group: Annotated[_Name, Meta(description="The test group the client showed.")]
    timestamp: Annotated[
        datetime, Meta(tz=True, description="When it was shown: RFC 3339 with an offset.")
    ]


class ExposureBatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    exposures: Annotated[
        list[ExposureIn],
        Meta(min_length=1, max_length=MAX_EXPOSURES_PER_BATCH, description="1 to 1000."),
    ]


class ExposuresCounted(msgspec.Struct, frozen=True):
    counted: int


class HealthQuery(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    basis: Annotated[
        Literal["subjects", "weight"],
        Meta(description="Registered subjects count one each, or by their weight."),
    ] = "subjects"


async def add_exposures(call: Call[None, ExposureBatch]) -> ExposuresCounted:
    call.services.require_snapshot()
    intake = call.services.exposures
    classified = intake.classifier(call.evaluator.snapshot).classify_all(call.body.exposures)
    intake.accept(classified)
    return ExposuresCounted(len(classified))


async def abtest_health(call: Call[HealthQuery, None]) -> AbTestHealth:
    call.services.require_snapshot()
    await call.services.exposures.flush()
    snapshot = call.evaluator.snapshot
    return await health_from(
        call.store.database, snapshot, call.path["test_name"], call.query.basis
    )


OPERATIONS = (
    Operation("POST", "/v1/exposures", add_exposures, ExposuresCounted,
              "Count exposures: which test group clients showed", "abtests", 202,
              body=ExposureBatch, records=True, replica=True,
              errors=(e.AbTestNotFound, e.ValidationError, e.InvalidTargetingKey,
                      e.DatabaseUnavailable),
              description="Client role. 1 to 1000 exposures, accepted all or none (202), and "
              "written to the database within FLAGGERY_EXPOSURE_FLUSH_INTERVAL (1 s). A unit's "
              "first exposure in the test's window counts for the group reported; later ones "
              "are repeats; a group other than the allocation's is also misassigned; a time "
              "outside the window counts as early or late only. Errors name the exposure's "
              "index. Served by read-only servers too (they count in the same database); "
              "an edge without a database answers 423."),
    Operation("GET", "/v1/abtests/{test_name}/health", abtest_health, AbTestHealth,
              "An A/B test's health: exposures against its allocation's split", "abtests",
              query=HealthQuery, errors=(e.AbTestNotFound, e.DatabaseUnavailable), replica=True,
              description="Per population (registered subjects, hashed keys): expected shares "
              "from the allocation, first exposures per group, chi-squared p, anytime-valid "
              "sequential p, state (green/yellow/red, docs/experiments.md); repeats, "
              "misassigned, early and late exposures; observed vs expected per bucket; "
              "assignments: flags answers served per group while live."),
)  # fmt: skip
