"""The resolution spec cases in tests/engine/cases/*.json: their format and a loader.

Shared by the engine tests and the HTTP app tests; the format is described in
tests/engine/cases/README.md.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec

from flaggery.engine.model import AbTest, Feature, Group, Rollout, State, Subject, TestGroup
from tests.engine.strategies import make_state

CASES_DIR = Path(__file__).parent / "cases"


class CaseFeature(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    variants: list[str]
    default: str | None = None
    killed: bool = False


class CaseSubject(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    weight: int
    bucket: int
    groups: list[str] = []


class CaseGroup(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    overrides: dict[str, str] = {}


class CaseRollout(msgspec.Struct, forbid_unknown_fields=True):
    feature: str
    variant: str
    proportion: float
    buckets: list[int]


class CaseTestGroup(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    proportion: float
    variants: dict[str, str]
    buckets: list[int]


class CaseAbTest(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    start: datetime
    end: datetime
    groups: list[CaseTestGroup]


class CaseState(msgspec.Struct, forbid_unknown_fields=True):
    buckets: list[int]
    features: list[CaseFeature] = []
    subjects: list[CaseSubject] = []
    groups: list[CaseGroup] = []
    rollouts: list[CaseRollout] = []
    abtests: list[CaseAbTest] = []


class CaseCheck(msgspec.Struct, forbid_unknown_fields=True):
    at: datetime
    flags: dict[int, dict[str, str]]
    note: str = ""
    not_found: list[int] = []


class SpecCase(msgspec.Struct, forbid_unknown_fields=True):
    description: str
    state: CaseState
    checks: list[CaseCheck]


def load_cases() -> dict[str, SpecCase]:
    """Every case, by file name without extension."""
    return {
        path.stem: msgspec.json.decode(path.read_bytes(), type=SpecCase)
        for path in sorted(CASES_DIR.glob("*.json"))
    }


def state_of(case: SpecCase) -> State:
    """The engine State a case describes."""
    spec = case.state
    return make_state(
        buckets=spec.buckets,
        subjects={s.id: Subject(s.weight, s.bucket, tuple(s.groups)) for s in spec.subjects},
        features=[
            Feature(f.name, tuple(f.variants), f.default, killed=f.killed) for f in spec.features
        ],
        rollouts=[
            Rollout(r.feature, r.variant, r.proportion, frozenset(r.buckets)) for r in spec.rollouts
        ],
        abtests=[
            AbTest(
                t.name,
                t.start,
                t.end,
                tuple(
                    TestGroup(g.name, g.proportion, g.variants, frozenset(g.buckets))
                    for g in t.groups
                ),
            )
            for t in spec.abtests
        ],
        groups=[Group(g.name, g.overrides) for g in spec.groups],
    )
