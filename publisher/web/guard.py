"""Security for every response (no I/O): headers, a CSP that allows no script, a body cap.

:class:`GuardMiddleware` adds ``nosniff``, ``no-referrer``, ``DENY`` framing, the
same-origin opener policy and (unless the endpoint set its own) :data:`PAGE_CSP` to every
response, and refuses request bodies over ``[web] max_body_bytes`` with 413 (as JSON to a
JSON request). An endpoint marked with :func:`streams_body` (a file upload) reads its body
itself, in chunks, under a limit of its own: the guard leaves that body alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
STREAMS_BODY = "streams_body"
E = TypeVar("E", bound=Callable[..., Any])


def streams_body(endpoint: E) -> E:
    """Mark an endpoint that streams its own request body (and enforces its own cap)."""
    setattr(endpoint, STREAMS_BODY, True)
    return endpoint


def too_large(scope: Scope, max_body: int) -> Response:
    """The 413 answer: JSON in the API's error shape to a JSON request, else plain text."""
    text = f"request body too large (at most {max_body} bytes)"
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    if content_type.split(b";")[0].strip().lower() == b"application/json":
        return JSONResponse({"error": {"code": "body_too_large", "message": text}}, 413)
    return PlainTextResponse(text + "\n", 413)


class GuardMiddleware:
    """Adds the security headers to every response and caps request bodies (413).

    A body is read whole (up to ``max_body``) before the endpoint runs, so an oversized
    one is refused whether or not it declared its ``Content-Length``.
    """

    def __init__(self, app: ASGIApp, max_body: int, streamed: Sequence[re.Pattern[str]] = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.streamed = tuple(streamed)  # the paths of endpoints marked streams_body

    def _streams(self, scope: Scope) -> bool:
        """Whether the request goes to an endpoint that reads its own body."""
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # servers that put the root path in front
            path = path[len(root):]
        return any(p.match(path) for p in self.streamed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with headers added and the body checked."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        if scope["method"] in BODY_METHODS and not self._streams(scope):
            declared = dict(scope["headers"]).get(b"content-length")
            too_big = declared is not None and (
                not declared.isdigit() or int(declared) > self.max_body
            )
            chunks: list[bytes] = []
            size = 0
            more = not too_big
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    too_big = True
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
            if too_big:
                await too_large(scope, self.max_body)(scope, receive, send_guarded)
                return
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_guarded)
            return
        await self.app(scope, receive, send_guarded)
