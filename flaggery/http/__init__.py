"""The HTTP service: ``create_app(settings)`` builds the Starlette app (serving, admin REST API,
OFREP, health, metrics, docs).

The app module is imported on first use, not here: `flaggery.ofrep.app` imports helpers from
this package and is imported by the app, so an eager import would make the two a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flaggery.http.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from flaggery.http import app

        return getattr(app, name)
    raise AttributeError(f"module 'flaggery.http' has no attribute {name!r}")
