"""What an import loads: the remote client, the engine and an edge's evaluator import only what
they use (issue 24 §4), not the server's database stack. Each import runs in a fresh
interpreter, and the modules it leaves in ``sys.modules`` are counted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_STACK = ("sqlalchemy", "asyncpg", "aiosqlite", "alembic", "starlette", "uvicorn", "jinja2")
"""Packages only a server (or the admin API over a database) needs."""


def loaded_by(statement: str) -> set[str]:
    """The module names loaded by running `statement` in a fresh interpreter."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout))


def top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


@pytest.fixture(scope="module")
def server_modules() -> set[str]:
    return loaded_by("import flaggery.http.app")


@pytest.mark.parametrize(
    "statement",
    [
        "import flaggery",
        "import flaggery.client",
        "from flaggery.client import FlaggeryClient",
        "import flaggery.engine",
        "from flaggery.live.evaluator import Evaluator",
    ],
)
def test_a_light_import_loads_no_server_stack(statement: str, server_modules: set[str]) -> None:
    loaded = loaded_by(statement)
    assert not top_level(loaded) & set(SERVER_STACK), statement
    # And it is a fraction of the server's import (887 modules when this was written).
    assert len(loaded) < len(server_modules) / 2, (statement, len(loaded), len(server_modules))


def test_the_engine_loads_the_standard_library_msgspec_and_re2_only() -> None:
    """Besides what the interpreter loads at start (the editable install's path hooks). RE2
    compiles the targeting rules' REGEX constraints (flaggery.engine.rules.patterns): a
    library, not I/O (docs/architecture.md). The one compiled module of flaggery's own, the
    key hash's C accelerator (flaggery.engine._keyhash, built from flaggery/engine/_keyhash.c:
    flaggery.engine.targeting's docstring), is a flaggery module like the others: the engine
    loads it wherever it was built."""
    from flaggery.engine.targeting import ACCELERATED

    started = loaded_by("pass")
    modules = loaded_by("import flaggery.engine")
    loaded = top_level(modules) - top_level(started)
    # msgspec imports typing_extensions when it is installed.
    allowed = {"flaggery", "msgspec", "typing_extensions", "re2"}
    assert loaded - set(sys.stdlib_module_names) <= allowed
    assert ("flaggery.engine._keyhash" in modules) is ACCELERATED


def test_the_lazy_names_are_the_real_ones() -> None:
    import flaggery
    from flaggery.core import Flaggery
    from flaggery.live.evaluator import Evaluator
    from flaggery.store.repository import AsyncFlaggery

    assert (flaggery.Flaggery, flaggery.AsyncFlaggery, flaggery.Evaluator) == (
        Flaggery,
        AsyncFlaggery,
        Evaluator,
    )
    assert flaggery.__version__
    with pytest.raises(AttributeError, match="no attribute 'Flagery'"):
        _ = flaggery.Flagery
