"""Provider webhooks: ``POST /hooks/<provider>`` (a door: it calls the services).

Email providers report bounces and spam complaints here within seconds, instead of by
mail: Amazon SES (through SNS), Postmark, SendGrid and Mailgun, each turned on by its
``[hooks.<provider>]`` table. Each request is authenticated the provider's way (a
signature, or basic auth) before anything is read from it: a request that fails is
answered 403 and changes nothing. The events are then recorded by
:mod:`publisher.services.feedback`, each once however often the provider sends it.

- ``common``: the refusal, secrets from the environment, JSON, signed-timestamp age;
- ``ses``: SNS signature verification, subscription confirmation, SES notifications;
- ``postmark``, ``sendgrid``, ``mailgun``: each provider's authentication and event shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.config import Config
from publisher.deliver.feedback import FeedbackEvent
from publisher.hooks import mailgun, postmark, sendgrid, ses
from publisher.hooks.common import Refused
from publisher.services import feedback
from publisher.web.common import context, offload
from publisher.web.guard import streams_body

log = logging.getLogger(__name__)

Reader = Callable[[Request, bytes, Any, datetime], Awaitable[list[FeedbackEvent]]]
PROVIDERS: dict[str, Reader] = {
    "ses": ses.events,
    "postmark": postmark.events,
    "sendgrid": sendgrid.events,
    "mailgun": mailgun.events,
}
# A SendGrid batch holds up to a few thousand events; bodies beyond this are not webhooks.
MAX_BODY = 4 * 1024 * 1024


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise Refused(413, f"request body too large (at most {MAX_BODY} bytes)")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(400, "the request was interrupted") from None
    return b"".join(chunks)


@streams_body
async def receive(request: Request) -> Response:
    """POST /hooks/<provider>: authenticate, read the events, record each once."""
    ctx = context(request)
    name = request.path_params["provider"]
    settings = ctx.config.hooks.enabled().get(name)
    if settings is None or name not in PROVIDERS:
        return JSONResponse({"error": f"no webhook for provider {name!r} here"}, 404)
    try:
        body = await _body(request)
        events = await PROVIDERS[name](request, body, settings, ctx.app.clock())
    except Refused as refused:
        log.warning("POST /hooks/%s refused (%d): %s", name, refused.status, refused.reason)
        return JSONResponse({"error": refused.reason}, refused.status)
    results = await offload(feedback.record_events, ctx.app, events)
    for result in results:
        if result.outcome not in ("duplicate", "ignored"):
            log.info("%s %s for %s: %s", name, result.kind, result.email or "?", result.outcome)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return JSONResponse({"received": len(events), "outcomes": counts})


def routes(config: Config) -> list[BaseRoute]:
    """``/hooks/<provider>`` when any provider is enabled (nothing otherwise)."""
    if not config.hooks.enabled():
        return []
    return [Route("/hooks/{provider}", receive, methods=["POST"], name="hooks")]
