"""Rendering console pages (no I/O of its own): the layout, the navigation, the CSP.

Every console page is ``templates/admin/<name>.html.j2`` extending ``admin/base.html.j2``,
rendered by :func:`render` with what the layout needs (the operator, the CSRF token, the
navigation, the ``/admin/`` base path) and with :data:`CONSOLE_CSP`: scripts and styles
only from this origin, none inline, frames only from this origin (the email preview).

:data:`NAV` is the navigation bar: append a :class:`NavItem` for a new page (it shows to
operators whose role allows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from publisher.models import Operator, role_allows
from publisher.web.common import context

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The email preview: its own inline styles and remote images, never a script, a form or a
# same-origin document (CSP sandbox as well as the iframe's sandbox attribute).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "font-src https: data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
    "sandbox"
)


@dataclass(frozen=True)
class NavItem:
    """One link of the navigation bar: the path under ``/admin/``, its label, and the
    least role that sees it."""

    path: str
    label: str
    role: str = "viewer"


NAV: list[NavItem] = [
    NavItem("", "Dashboard"),
    NavItem("issues", "Issues"),
    NavItem("subscribers", "Subscribers"),
    NavItem("digests", "Digests and sources"),
    NavItem("audit", "Audit log"),
    NavItem("webhooks", "Webhooks"),
    NavItem("operators", "Operators", "admin"),
    NavItem("tokens", "API tokens", "admin"),
    NavItem("account", "Account"),
]


def base(request: Request) -> str:
    """The console's root path, ``/admin/`` (behind any ASGI ``root_path``)."""
    return f"{request.scope.get('root_path', '')}/admin/"


def nav_for(request: Request, operator: Operator | None) -> list[dict[str, Any]]:
    """The navigation links this operator may use, the current one marked."""
    if operator is None:
        return []
    root = base(request)
    here = request.url.path
    items = []
    for item in NAV:
        if not role_allows(operator.role, item.role):
            continue
        href = root + item.path
        current = here == href if not item.path else here.startswith(href)
        items.append({"href": href, "label": item.label, "current": current})
    return items


def render(
    request: Request, template: str, title: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """The console page ``templates/admin/<template>`` with the layout's values; never
    cached, under the console's CSP."""
    ctx = context(request)
    operator: Operator | None = getattr(request.state, "operator", None)
    values.setdefault("notice", request.query_params.get("notice", "")[:300])
    html = ctx.templates.env.get_template(f"admin/{template}").render(
        site=ctx.config.site,
        title=title,
        base=base(request),
        operator=operator,
        csrf=getattr(request.state, "csrf", ""),
        nav=nav_for(request, operator),
        **values,
    )
    return HTMLResponse(html, status, headers=console_headers())


def console_headers() -> dict[str, str]:
    """The headers of every console response."""
    return {"Cache-Control": "no-store", "Content-Security-Policy": CONSOLE_CSP}


def message(
    request: Request,
    title: str,
    lines: Sequence[str],
    status: int = 200,
    links: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    """A page of a few ``lines`` and ``links`` (``(href, text)``): refusals, results."""
    return render(request, "message.html.j2", title, status, lines=list(lines), links=list(links))


def redirect(request: Request, path: str, *, notice: str = "") -> RedirectResponse:
    """303 to ``/admin/<path>`` (after a POST), with an optional one-line notice."""
    url = base(request) + path
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + quote(notice[:300])
    return RedirectResponse(url, 303, headers=console_headers())
