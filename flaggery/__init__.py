"""flaggery: self-hosted feature flags served from an in-memory snapshot.

- ``AsyncFlaggery``: the async admin API (writes, admin reads, resolution).
- ``Flaggery`` (also ``flaggery.core.Flaggery``): the same API, synchronous, as in 0.2.1.
- ``Evaluator``: the live snapshot for async applications; resolution without I/O.
- ``flaggery.errors``: the exception tree.

The names are imported on first use (PEP 562), so ``import flaggery.client``, the engine or an
edge's evaluator load only what they use: not SQLAlchemy, the drivers or Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flaggery import errors

if TYPE_CHECKING:
    from flaggery.core import Flaggery
    from flaggery.live.evaluator import Evaluator
    from flaggery.store.repository import AsyncFlaggery

__all__ = ["AsyncFlaggery", "Evaluator", "Flaggery", "errors"]

_LAZY = {
    "AsyncFlaggery": "flaggery.store.repository",
    "Evaluator": "flaggery.live.evaluator",
    "Flaggery": "flaggery.core",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "__version__":
        # One source of truth: the version in pyproject.toml, as installed.
        from importlib.metadata import version

        value = version("flaggery")
    else:
        raise AttributeError(f"module 'flaggery' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *_LAZY, "__version__"]
