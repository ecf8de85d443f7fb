"""The Unleash client specification 6.1.0 (npm ``@unleash/client-specification``) as rules.

``tests/engine/rules/unleash/package.json`` pins the package; ``.ci/run`` installs it with
``npm ci --prefix tests/engine/rules/unleash``. Only the files about constraints and operators
are read (no percentage rollouts, no variants). Each Unleash feature becomes one rule: each of
its strategies one constraint set (``default`` adds no constraint, ``userWithId`` adds
``userId IN ids``, ``remoteAddress`` adds ``remoteAddress IN_CIDR IPs``), a disabled feature a
rule with no sets, a feature without strategies a rule with one empty set. Unleash's context
(standard fields plus ``properties``) becomes flaggery's flat context.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from flaggery.engine.rules import Constraint, ConstraintSet, Rule

__all__ = ["SPEC_FILES", "SpecCase", "load_cases", "rules_of"]

SPEC_DIR = (
    Path(__file__).parent
    / "unleash"
    / "node_modules"
    / "@unleash"
    / "client-specification"
    / "specifications"
)
SPEC_FILES = (
    "01-simple-examples.json",
    "02-user-with-id-strategy.json",
    "06-remote-address-strategy.json",
    "09-strategy-constraints.json",
    "11-strategy-constraints-edge-cases.json",
    "13-constraint-operators.json",
    "14-constraint-semver-operators.json",
    "18-utf8-flag-names.json",
    "21-regex-constraint-operators.json",
    "22-cidr-constraint-operators.json",
)
# CI installs the package: there a missing file is a failure, never a skip.
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("FLAGGERY_REQUIRE_SPEC") == "1"
INSTALL = "npm ci --prefix tests/engine/rules/unleash"


class SpecCase(NamedTuple):
    file: str
    description: str
    context: dict[str, object]
    feature: str
    expected: bool


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _strategy_set(strategy: dict[str, Any]) -> ConstraintSet:
    name, parameters = strategy["name"], strategy.get("parameters") or {}
    own: tuple[Constraint, ...]
    if name == "default":
        own = ()
    elif name == "userWithId":
        own = (Constraint("userId", "IN", values=_split(parameters["userIds"])),)
    elif name == "remoteAddress":
        own = (Constraint("remoteAddress", "IN_CIDR", values=_split(parameters["IPs"])),)
    else:
        raise AssertionError(f"strategy {name!r} is not in the constraint files")
    constraints = tuple(
        Constraint(
            c["contextName"],
            c["operator"],
            values=tuple(c.get("values") or ()),
            value=c.get("value"),
            inverted=c.get("inverted", False),
            case_insensitive=c.get("caseInsensitive", False),
        )
        for c in strategy.get("constraints") or ()
    )
    return own + constraints


def rules_of(state: dict[str, Any]) -> dict[str, Rule]:
    """Feature name -> the rule that is its Unleash ``isEnabled``."""
    rules: dict[str, Rule] = {}
    for feature in state["features"]:
        strategies = feature.get("strategies") or []
        if not feature["enabled"]:
            rules[feature["name"]] = ()
        elif not strategies:
            rules[feature["name"]] = ((),)
        else:
            rules[feature["name"]] = tuple(_strategy_set(s) for s in strategies)
    return rules


def flat_context(context: dict[str, Any]) -> dict[str, object]:
    flat = {name: value for name, value in context.items() if name != "properties"}
    flat.update(context.get("properties") or {})
    return flat


def load_cases() -> tuple[dict[str, dict[str, Rule]], list[SpecCase]]:
    """(file -> feature -> rule, every case), or a skip (a failure under CI) without files."""
    missing = [name for name in SPEC_FILES if not (SPEC_DIR / name).is_file()]
    if missing:
        message = f"Unleash client specification not installed ({INSTALL}): {missing}"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    rules: dict[str, dict[str, Rule]] = {}
    cases: list[SpecCase] = []
    for name in SPEC_FILES:
        document = json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))
        rules[name] = rules_of(document["state"])
        cases += [
            SpecCase(
                name,
                test["description"],
                flat_context(test["context"]),
                test["toggleName"],
                test["expectedResult"],
            )
            for test in document["tests"]
        ]
    return rules, cases
