"""The admin dashboard at ``/ui/``: server-rendered pages (Jinja2) with htmx, vendored.

Mounted by the HTTP app (`flaggery.http.app`) on every server; a read-only server answers it
423 like the other admin routes. Every write goes through the same `AsyncFlaggery` methods as
the REST API, as the signed-in token's actor. Modules: `mount` (the ASGI app and its guard),
`session` (sign-in, CSRF), `pages` (reads), `actions` (writes), `live` (the change stream
that keeps History current), `render` (templates, charts).
"""

from flaggery.ui.mount import ui_mount

__all__ = ["ui_mount"]
