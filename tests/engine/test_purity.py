"""flaggery.engine stays pure: standard library (no I/O, no clock), msgspec and itself only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import flaggery.engine

ENGINE_DIR = Path(flaggery.engine.__file__).parent
MODULES = sorted(ENGINE_DIR.rglob("*.py"))

# Pure standard-library modules; add one here deliberately, never anything with I/O, threads,
# an event loop (asyncio) or a clock (time).
PURE_STDLIB = {
    "__future__",
    "abc",
    "array",
    "bisect",
    "collections",
    "contextlib",  # suppress() in the bounded per-snapshot caches (evaluation)
    "ctypes",  # libc madvise(2) only: huge pages for the subject index (huge_pages), no I/O
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hashlib",  # blake2b orders buckets per name (bucket_order): pure and deterministic
    "heapq",
    "ipaddress",  # IN_CIDR (engine/rules)
    "itertools",
    "math",
    "operator",
    "re",  # fixed internal patterns (semantic versions, dates, numbers); rules use RE2
    "struct",  # the fixed prefix of a State's bytes (state_codec)
    "sys",  # sys.platform only: madvise's advice numbers are Linux's (huge_pages)
    "types",
    "typing",
    "zlib",  # a bulk add's columns in the change log (model.SubjectsFact): pure compression
}
# re2 (google-re2): the REGEX operator's linear-time matcher, a library without I/O.
ALLOWED_PACKAGES = {"msgspec", "re2"}
ALLOWED_FLAGGERY = {"flaggery.errors", "flaggery.engine"}
CLOCK_READS = {"now", "utcnow", "today"}


def imported_modules(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside flaggery.engine.
            names.append("flaggery.engine" if node.level else node.module or "")
    return names


def is_allowed(module: str) -> bool:
    top = module.partition(".")[0]
    if top == "flaggery":
        return any(module == p or module.startswith(p + ".") for p in ALLOWED_FLAGGERY)
    return top in PURE_STDLIB | ALLOWED_PACKAGES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ENGINE_DIR)))
def test_engine_module_imports_only_pure_modules(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    forbidden = [module for module in imported_modules(tree) if not is_allowed(module)]
    assert not forbidden, f"{path.name} imports {forbidden}: the engine must stay pure"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ENGINE_DIR)))
def test_engine_module_never_reads_the_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    reads = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_READS
    ]
    assert not reads, f"{path.name} reads the clock ({reads}): take `now` as a parameter"


def test_the_checks_catch_what_they_should() -> None:
    tree = ast.parse("import asyncio\nfrom time import monotonic\nfrom sqlalchemy import select")
    assert [m for m in imported_modules(tree) if not is_allowed(m)] == [
        "asyncio",
        "time",
        "sqlalchemy",
    ]
    assert not is_allowed("flaggery.store")
    assert is_allowed("flaggery.engine.model")
