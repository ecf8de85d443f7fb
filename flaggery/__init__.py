"""flaggery: self-hosted feature flags served from an in-memory snapshot.

- ``AsyncFlaggery``: the async admin API (writes, admin reads, resolution).
- ``Flaggery`` (also ``flaggery.core.Flaggery``): the same API, synchronous, as in 0.2.1.
- ``Evaluator``: the live snapshot for async applications; resolution without I/O.
- ``flaggery.errors``: the exception tree.
"""

from importlib.metadata import version

from flaggery import errors
from flaggery.core import Flaggery
from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery

__all__ = ["AsyncFlaggery", "Evaluator", "Flaggery", "errors"]
# One source of truth: the version in pyproject.toml, as installed.
__version__ = version("flaggery")
