"""Every public class and method of the Python API says what it does (shapes, units, errors)."""

from __future__ import annotations

import inspect

import pytest

import flaggery
from flaggery import AsyncFlaggery, Evaluator, Flaggery

CLASSES = [AsyncFlaggery, Flaggery, Evaluator]


def public_members(cls: type) -> list[tuple[str, object]]:
    return [
        (name, member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    ]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_public_member_has_a_docstring(cls: type) -> None:
    assert inspect.getdoc(cls), f"{cls.__name__} has no docstring"
    missing = [name for name, member in public_members(cls) if not inspect.getdoc(member)]
    assert not missing, f"{cls.__name__}: no docstring on {missing}"


def test_the_sync_facade_has_every_async_method() -> None:
    async_names = {name for name, _ in public_members(AsyncFlaggery)} - {"database"}
    assert async_names <= {name for name, _ in public_members(Flaggery)}


def test_the_package_exports_the_documented_names() -> None:
    assert set(flaggery.__all__) == {"AsyncFlaggery", "Evaluator", "Flaggery", "errors"}
