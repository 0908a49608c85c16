"""How one API operation runs (no I/O of its own; the handlers do store I/O in threads).

An :class:`Operation` is one row of the route table: method, path, the scope it needs, the
pydantic models of its query, body and response, and its handler. The same row makes the
Starlette route (:func:`endpoint`) and the OpenAPI operation
(:mod:`publisher.api.openapi`), so the two cannot drift apart.

Every request goes through the same steps, in this order: the bearer token (401), the
token's rate limit (429 with ``Retry-After``), its scope (403), the path, query and body
(404, 400, 422), the ``Idempotency-Key`` of a POST (:mod:`publisher.api.idempotency`), then
the handler. Errors always have one shape, ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.app import App
from publisher.models import ApiToken, scope_allows
from publisher.services.audit import Actor
from publisher.services.tokens import authenticate_token
from publisher.web.common import WebContext
from publisher.web.ratelimit import RateLimiter

MAX_ID = 2**31 - 1  # ids are 32-bit integers in the store


class ApiError(Exception):
    """An error response: HTTP ``status``, a stable ``code`` and a one-line ``message``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one shape of every error: ``{"error": {"code": ..., "message": ...}}``."""
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status, headers=headers, media_type="application/json")


@dataclass
class Call:
    """What a handler gets: the app, who calls, the parsed path, query and body, and the
    request's URL (for ``Link`` headers)."""

    app: App
    token: ApiToken
    actor: Actor
    path: dict[str, Any]
    query: Any
    body: Any
    url: str


@dataclass
class Reply:
    """What a handler returns: a model (None: no body), the status and extra headers."""

    model: BaseModel | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One API operation: the route and its OpenAPI description in one place.

    ``path`` uses ``{name}`` placeholders; each name in ``ids`` is a positive integer id.
    ``statuses`` lists the success statuses with what they return (the first is the usual
    one) and ``errors`` the error statuses beyond those every operation may answer.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    scope: str
    handler: Callable[[Call], Reply]
    statuses: dict[int, type[BaseModel] | None]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    ids: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    paged: bool = False
    description: str = ""


class Door:
    """The API's state shared by its endpoints: the per-token rate limiter."""

    def __init__(self, requests_per_minute: int) -> None:
        self.limiter = RateLimiter(requests_per_minute, 60.0)


def _bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticate(request: Request, web: WebContext) -> ApiToken:
    """The request's active token, or a 401 ApiError."""
    raw = _bearer(request)
    if raw is None:
        raise ApiError(
            401,
            "unauthorized",
            "send an API token: Authorization: Bearer <token> (see `publisher tokens create`)",
            {"WWW-Authenticate": 'Bearer realm="publisher"'},
        )
    token: ApiToken | None = await run_in_threadpool(authenticate_token, web.app, raw)
    if token is None:
        raise ApiError(
            401,
            "invalid_token",
            "the token is unknown, revoked or expired",
            {"WWW-Authenticate": 'Bearer realm="publisher", error="invalid_token"'},
        )
    return token


def check_limits(door: Door, token: ApiToken, scope: str) -> None:
    """429 when the token used up its requests for the minute; 403 when its scope is short."""
    key = str(token.id)
    if not door.limiter.hit(key):
        wait = max(1, math.ceil(door.limiter.retry_after(key)))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {door.limiter.limit} requests in a minute with this token; "
            f"retry in {wait}s",
            {"Retry-After": str(wait)},
        )
    if not scope_allows(token.scope, scope):
        raise ApiError(
            403,
            "insufficient_scope",
            f"this needs a token with scope {scope!r}; token {token.name!r} has {token.scope!r}",
        )


def parse_ids(op: Operation, params: dict[str, Any]) -> dict[str, Any]:
    """The path's ids as integers; 404 for anything that cannot be an id."""
    found: dict[str, Any] = dict(params)
    for name in op.ids:
        value = str(params.get(name, ""))
        if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
            raise ApiError(404, "not_found", f"no {op.tag.rstrip('s')} {value[:40]!r}")
        found[name] = int(value)
    return found


def _invalid(exc: ValidationError, where: str) -> ApiError:
    """A 422 naming each bad field (at most five), in one line."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or where
        parts.append(f"{loc}: {err['msg']}")
    return ApiError(422, "invalid_request", f"invalid {where}: " + "; ".join(parts))


def parse_query(op: Operation, request: Request) -> Any:
    """The query string as the operation's query model (422 when it does not fit)."""
    if op.query is None:
        return None
    values: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in values:
            raise ApiError(422, "invalid_request", f"invalid query: {key} given more than once")
        values[key] = value
    try:
        return op.query.model_validate(values)
    except ValidationError as exc:
        raise _invalid(exc, "query") from None


def parse_body(op: Operation, raw: bytes) -> Any:
    """The JSON body as the operation's body model: 400 when it is not JSON, 422 when it
    does not fit. An optional body may be empty."""
    if op.body is None:
        return None
    if not raw.strip() and not op.body_required:
        raw = b"{}"
    try:
        return op.body.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "invalid_json", "the body is not valid JSON (UTF-8)") from None
        raise _invalid(exc, "body") from None


def render(reply: Reply) -> Response:
    """The handler's reply as a JSON response (or an empty one)."""
    if reply.model is None:
        return Response(status_code=reply.status, headers=reply.headers)
    body = reply.model.model_dump_json()
    return Response(body, reply.status, headers=reply.headers, media_type="application/json")


def next_link(url: str, cursor: str | None) -> dict[str, str]:
    """The ``Link: <...>; rel="next"`` header of a page that has a next one."""
    if cursor is None:
        return {}
    from starlette.datastructures import URL

    target = URL(url).include_query_params(cursor=cursor)
    return {"Link": f'<{target}>; rel="next"'}
