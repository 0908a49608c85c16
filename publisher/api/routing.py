"""The API's Starlette side (no I/O of its own): endpoints from operations, one error shape.

:func:`build` turns the route table into a router mounted at ``/api/v1``. Whatever goes
wrong under that prefix (an unknown path, a wrong method, a bad request, a bug) answers
``{"error": {"code", "message"}}`` as JSON, never the subscriber pages' HTML error page:
:class:`Boundary` wraps the router and maps every exception to that shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Message, Receive, Scope, Send

from publisher.api import idempotency
from publisher.api.framework import (
    ApiError,
    Call,
    Door,
    Operation,
    authenticate,
    check_limits,
    error_response,
    parse_body,
    parse_ids,
    parse_query,
    render,
)
from publisher.compose.subscriptions import FormError
from publisher.errors import ConfigError, PublisherError, SubscriberError, TransportError
from publisher.services.audit import Actor
from publisher.services.directory import CursorError
from publisher.web.common import WebContext, context

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
Endpoint = Callable[[Request], Awaitable[Response]]


def to_response(exc: Exception) -> Response:
    """The JSON error response for ``exc`` (logged when it is a bug: 500)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return error_response(404, "not_found", "no such API endpoint (see /api/v1/openapi.json)")
        if exc.status_code == 405:
            return error_response(
                405, "method_not_allowed", "this endpoint does not take that method",
                dict(exc.headers or {}),
            )  # fmt: skip
        return error_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail))
    if isinstance(exc, CursorError):
        return error_response(422, "invalid_cursor", exc.message)
    if isinstance(exc, FormError | SubscriberError | ConfigError):
        return error_response(422, "invalid_request", exc.message)
    if isinstance(exc, TransportError):
        return error_response(503, "mail_unavailable", f"the mail could not be sent: {exc.message}")
    if isinstance(exc, PublisherError):
        return error_response(409, "conflict", exc.message)
    log.exception("API error", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error; it was logged")


class Boundary:
    """Runs the API router; any exception under it becomes a JSON error response."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.routes = router.routes  # Mount.routes shows them (the spec test walks them)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the router; answer an exception raised before the response started."""
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.router(scope, receive, watch)
        except Exception as exc:  # noqa: BLE001 - every error answers in one shape
            if started or scope["type"] != "http":
                raise
            await to_response(exc)(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await to_response(HTTPException(404))(scope, receive, send)


def public_url(web: WebContext, request: Request) -> str:
    """This request's URL under ``[web] base_url``."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{web.config.web.base_url.rstrip('/')}{request.url.path}{query}"


def endpoint(op: Operation, door: Door) -> Endpoint:
    """The Starlette endpoint that runs ``op`` through every step (see framework)."""

    async def handle(request: Request) -> Response:
        web = context(request)
        token = await authenticate(request, web)
        check_limits(door, token, op.scope)
        call = Call(
            app=web.app,
            token=token,
            actor=Actor(f"token:{token.name}", web.client_ip(request)),
            path=parse_ids(op, dict(request.path_params)),
            query=parse_query(op, request),
            body=parse_body(op, await request.body()) if op.body else None,
            # Links point at the public address (behind a proxy, not the one uvicorn sees).
            url=public_url(web, request),
        )
        if op.method == "POST":
            return await idempotency.run_once(request, op, call, to_response)
        return render(await run_in_threadpool(op.handler, call))

    handle.__name__ = op.operation_id
    return handle


def _dispatch(handlers: dict[str, Endpoint]) -> Endpoint:
    """One endpoint for every method of a path, so that a 405's ``Allow`` lists them all."""

    async def handle(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        response: Response = await handlers[method](request)
        return response

    return handle


def build(operations: Sequence[Operation], door: Door, extra: Sequence[BaseRoute]) -> Boundary:
    """The router of ``operations`` (paths relative to ``/api/v1``) plus ``extra`` routes."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = endpoint(op, door)
    routes: list[BaseRoute] = list(extra)
    for path, handlers in by_path.items():
        routes.append(Route(path, _dispatch(handlers), methods=list(handlers)))
    return Boundary(Router(routes=routes, default=_not_found))
