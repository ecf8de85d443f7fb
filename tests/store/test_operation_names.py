"""WRITE_OPERATIONS is every operation name the store's code records: each literal name passed
to `Database.write` (directly or through the rollout and kill-switch helpers, whose first
argument it is), the first word of the f-string names (revert, restore), and the subject
writes of the group commit. An operation added without its name in the list fails here."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import flaggery
from flaggery.store.operation_names import WRITE_OPERATIONS, operation_word
from flaggery.store.planned_writes import Operation

PASSES_THE_NAME = {"write", "_set_rollout", "_set_killed"}


def _recorded_names() -> set[str]:
    names: set[str] = set()
    for path in Path(flaggery.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in PASSES_THE_NAME
                and node.args
            ):
                continue
            name = node.args[0]
            if isinstance(name, ast.Subscript):  # f"revert {revision}"[:64]
                name = name.value
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                names.add(name.value)
            elif isinstance(name, ast.JoinedStr) and isinstance(name.values[0], ast.Constant):
                names.add(operation_word(str(name.values[0].value)))
    return names


def test_the_list_is_every_name_a_write_records() -> None:
    recorded = _recorded_names() | set(typing.get_args(Operation))
    assert {"kill_switch", "revert", "restore", "add_subject"} <= recorded  # the scan sees them
    assert recorded == WRITE_OPERATIONS


def test_the_operation_of_a_recorded_text_is_its_first_word() -> None:
    assert operation_word("revert 12") == "revert"
    assert operation_word("restore checkout as of 7") == "restore"
    assert operation_word("kill_switch") == "kill_switch"
