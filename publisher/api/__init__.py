"""The HTTP API under ``/api/v1/`` (a door: it calls the services, as the CLI does).

``publisher serve`` mounts it (unless ``[api] enabled = false``). Requests carry an API
token (``Authorization: Bearer <token>``, from ``publisher tokens create``) whose scope
decides what they may do: ``read`` only GETs, ``write`` also changes subscribers, ``send``
also sends, cancels, pauses, resumes and resends issues. The modules:

- ``models``: pydantic models that validate requests and describe responses;
- ``framework``: one operation's steps (token, rate limit, scope, parsing) and its errors;
- ``idempotency``: the ``Idempotency-Key`` of POSTs, kept 24 hours per token;
- ``routing``: the router, and the boundary that answers every error as JSON;
- ``openapi``: the OpenAPI 3.1 document, generated from the route table;
- ``subscribers``, ``issues``, ``catalog``: the resources' handlers and route tables.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from publisher.api import catalog, issues, subscribers
from publisher.api.framework import Door, Operation
from publisher.api.openapi import document
from publisher.api.routing import PREFIX, build
from publisher.config import Config

OPERATIONS: list[Operation] = [*subscribers.OPERATIONS, *issues.OPERATIONS, *catalog.OPERATIONS]


def _version() -> str:
    try:
        return version("publisher")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def routes(config: Config) -> list[BaseRoute]:
    """The API mounted at ``/api/v1`` (nothing when ``[api] enabled = false``)."""
    if not config.api.enabled:
        return []
    spec = document(OPERATIONS, title=config.site.title, version=_version())

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(spec)

    door = Door(config.api.requests_per_minute)
    api = build(OPERATIONS, door, [Route("/openapi.json", openapi, methods=["GET"])])
    return [Mount(PREFIX, app=api, name="api")]
