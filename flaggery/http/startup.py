"""What a starting server says first: where to point a browser, and whether its admin API is
open to anyone who can connect.

Logged once by the ``flaggery`` command before its workers start (``log_startup``), as
INFO lines, and a WARNING for an admin server without any token (allowed only on a loopback
address: ``Settings.check_exposure`` refuses it anywhere else).
"""

from __future__ import annotations

import logging

from flaggery.settings import Settings

__all__ = ["base_url", "log_startup"]

log = logging.getLogger(__name__)


def base_url(settings: Settings) -> str:
    """``http://host:port`` of the server these settings start (IPv6 in brackets)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def log_startup(settings: Settings) -> None:
    """Log the dashboard's URL (or, on a read-only server or edge, that it has none and where
    flags are), the API reference's if enabled, and a WARNING if the admin API is open."""
    url = base_url(settings)
    if settings.admin_mode:
        log.info("Dashboard: %s/ui/", url)
    else:
        log.info(
            "Read-only server: flags at %s/v1/subjects/{id}/flags; the dashboard is served "
            "by the admin server (flaggery --admin).",
            url,
        )
    if settings.enable_docs:
        log.info("API reference: %s/docs", url)
    if settings.admin_mode and not settings.requires_tokens:
        log.warning(
            "The admin API and the dashboard are open: no token is configured, so anyone who "
            "can connect to %s can change every flag. Set FLAGGERY_TOKENS, "
            "FLAGGERY_TOKENS_FILE or FLAGGERY_ADMIN_TOKEN to require one.",
            url,
        )
