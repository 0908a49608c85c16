"""The web app factory (no I/O of its own): routes, middleware and error pages together.

:func:`create_app` builds the Starlette app: the routes of every factory in
:data:`ROUTE_FACTORIES` (the feeds, the archive, ``/healthz`` and ``/metrics``), the
subscriber pages, then the caller's ``extra_routes``. The endpoints are plain functions;
what they share (the wired App, templates, secret and rate limits) is a
:class:`~publisher.web.common.WebContext` in ``app.state.web``.

To add endpoints, write a function ``(config) -> list[BaseRoute]`` and add it to
:data:`ROUTE_FACTORIES`, or pass routes to :func:`create_app` as ``extra_routes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.config import Config
from publisher.web import (
    confirm,
    health,
    preferences,
    static,
    subscribe,
    tracking,
    unsubscribe,
)
from publisher.web.common import WebContext, error_handlers
from publisher.web.guard import STREAMS_BODY, GuardMiddleware

# Each factory adds its routes to the app; append yours here.
ROUTE_FACTORIES: list[Callable[[Config], list[BaseRoute]]] = [
    static.feed_routes,
    static.archive_routes,
    health.routes,
]


def subscriber_routes() -> list[BaseRoute]:
    """``/``, the stylesheet, ``/subscribe``, ``/confirm/<token>``, ``/unsubscribe/<token>``,
    ``/preferences/<token>``, and the tracked links ``/r/<token>`` and ``/o/<token>``."""
    return [
        *static.page_routes(),
        *subscribe.routes(),
        *confirm.routes(),
        *unsubscribe.routes(),
        *preferences.routes(),
        *tracking.routes(),
    ]


def create_app(
    config: Config, extra_routes: Sequence[BaseRoute] = (), *, app: App | None = None
) -> Starlette:
    """The web application for ``config``: every factory's routes, the subscriber pages
    (using ``app``, else an App opened on first use) and ``extra_routes``."""
    context = WebContext(config, app)
    routes: list[BaseRoute] = [r for factory in ROUTE_FACTORIES for r in factory(config)]
    routes.extend(subscriber_routes())
    routes.extend(extra_routes)
    # Uploads read their own bodies in chunks; the guard must not buffer them first.
    streamed = [
        r.path_regex for r in routes if isinstance(r, Route) and getattr(r.endpoint, STREAMS_BODY, False)
    ]
    web = Starlette(
        routes=routes,
        middleware=[
            Middleware(GuardMiddleware, max_body=config.web.max_body_bytes, streamed=streamed),
            Middleware(GZipMiddleware, minimum_size=500),
        ],
        exception_handlers=error_handlers(),
    )
    web.state.web = context
    return web


def app_from_environment() -> Starlette:
    """The web application of the config named by ``$PUBLISHER_CONFIG`` (else ./config.toml).

    For ASGI servers: ``publisher serve`` runs it, and so does
    ``uvicorn --factory publisher.web:app_from_environment``.
    """
    from publisher.config import default_path, load

    return create_app(load(default_path()))
