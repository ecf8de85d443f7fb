"""The HTTP service: ``create_app(settings)`` builds the Starlette app (serving, admin REST API,
health, metrics, docs)."""

from flaggery.http.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
