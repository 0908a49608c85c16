"""The whole HTTP application that ``publisher serve`` runs: every door on one Starlette app.

The subscriber pages, feeds, archive and monitoring come from :mod:`publisher.web`; the
operators' console (``/admin/``), the HTTP API (``/api/v1/``) and the provider
webhooks (``/hooks/<provider>``) are doors of their own
beside it, built on the web layer's plumbing. This module is the only place that knows all
of them, so that each door stays independent of the others (README "Package map").

To add a door, write a function ``(config) -> list[BaseRoute]`` in its package and add it
to :data:`DOORS`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from publisher import admin, api, hooks
from publisher.app import App
from publisher.config import Config

# Each door's routes, mounted after the subscriber pages; append yours here.
DOORS: list[Callable[[Config], list[BaseRoute]]] = [admin.routes, api.routes, hooks.routes]


def create_server(config: Config, *, app: App | None = None) -> Starlette:
    """The application for ``config``: the web door plus every door in :data:`DOORS`."""
    from publisher.web import create_app

    extra = [route for door in DOORS for route in door(config)]
    return create_app(config, extra, app=app)


def app_from_environment() -> Starlette:
    """The application of the config named by ``$PUBLISHER_CONFIG`` (else ./config.toml).

    ``publisher serve`` runs it, and so does ``uvicorn --factory
    publisher.server:app_from_environment``.
    """
    from publisher.config import default_path, load

    return create_server(load(default_path()))
