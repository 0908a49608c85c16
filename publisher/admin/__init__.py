"""The operators' console door (HTTP I/O): ``/admin/`` of ``publisher serve``.

Server-rendered pages (Jinja2, ``templates/admin/``) with a little JavaScript of our own
(``static/admin.js``) and two vendored libraries (``static/vendor/``: htmx for fragments
that refresh themselves, uPlot for charts; no CDN, no build step). The endpoints call the
same services as the CLI; nothing here holds business rules or SQL.

Modules:

- ``pages``: the layout, :data:`~publisher.admin.pages.NAV` (the navigation bar), the
  console's CSP and the preview's, :func:`~publisher.admin.pages.render`, redirects;
- ``auth``: the session cookie, :func:`~publisher.admin.auth.require` (session, role and
  CSRF for an endpoint), :func:`~publisher.admin.auth.actor` and
  :func:`~publisher.admin.auth.audit` (the audit entry of the request's operator);
- ``login``: log in (password, then TOTP or a recovery code), log out, the account page
  with 2FA enrolment;
- ``dashboard``: charts, live sending figures, the no-worker banner, digests, sources;
- ``issues``: the issue list, an issue's page, its progress JSON and its preview;
- ``actions``: test copy, send now, pause, resume, cancel, resend failed, each confirmed;
- ``people``: operators (add, remove, reset 2FA) and API tokens (create, revoke), admins only;
- ``subscribers``: the subscriber search (keyset pages), a subscriber's page, the CSV export;
- ``subscriber_actions``: edit, unsubscribe and erase a subscriber, each confirmed;
- ``imports``: the streamed CSV upload and the background import's progress page;
- ``catalog``: digests (schedule, next send, window, last issues) and sources' health;
- ``auditlog``: the audit log, filtered and keyset-paged, and its CSV export;
- ``webhooks``: each outgoing webhook's state and its recent attempts; turning one back on;
- ``assets``: ``/admin/static/`` (the script, the stylesheet, the vendored libraries).

To add a page: write a module with a ``routes() -> list[BaseRoute]`` whose endpoints are
wrapped in ``@require("viewer" | "editor" | "admin")`` and render with
``pages.render(request, "<name>.html.j2", title, ...)`` (a template extending
``admin/base.html.j2``); append its ``routes`` to :data:`PAGES` and a
:class:`~publisher.admin.pages.NavItem` to :data:`~publisher.admin.pages.NAV`. Forms
carry ``<input type="hidden" name="csrf" value="{{ csrf }}">``; operator actions call
``await audit(request, "<noun>.<verb>", target, detail)`` unless the service writes the
audit entry itself (those taking an ``actor=``: pass ``actor(request)``).

Imports: ``admin`` may import web, services and everything below; never ``ops`` or ``api``.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from publisher.config import Config

from . import (
    actions,
    assets,
    auditlog,
    catalog,
    dashboard,
    imports,
    issues,
    login,
    people,
    subscriber_actions,
    subscribers,
    webhooks,
)

# Each module's routes, in order (a fixed path before a pattern that would also match it).
PAGES: list[Callable[[], list[BaseRoute]]] = [
    assets.routes,
    login.routes,
    dashboard.routes,
    issues.routes,
    actions.routes,
    people.routes,
    imports.routes,  # /admin/subscribers/import before /admin/subscribers/{id}
    subscribers.routes,
    subscriber_actions.routes,
    catalog.routes,
    auditlog.routes,
    webhooks.routes,
]


def routes(config: Config) -> list[BaseRoute]:
    """The console's routes, or none with ``[admin] enabled = false``."""
    if not config.admin.enabled:
        return []
    return [route for page in PAGES for route in page()]
