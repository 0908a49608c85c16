"""``Idempotency-Key`` on POST (store I/O through the service): run once, replay after.

The key is scoped per token and kept 24 hours (:mod:`publisher.services.idempotency`). A
request is "the same" when its method, path and body (as validated, so key order and
defaults do not matter) are the same. A retry of the same request gets the first response
again, with ``Idempotent-Replayed: true``; the same key with a different request gets 422;
a retry while the first is still running gets 409. Server errors are not kept, so a retry
after one runs again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.api.framework import ApiError, Call, Operation, render
from publisher.services import idempotency
from publisher.store import IN_PROGRESS

HEADER = "idempotency-key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces: UUIDs and the like
KEPT_HEADERS = ("location", "link", "content-type")


def request_hash(op: Operation, call: Call) -> str:
    """The fingerprint of a request: operation, path parameters and validated body."""
    body = "" if call.body is None else call.body.model_dump_json()
    text = json.dumps([op.operation_id, call.path, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def run_once(
    request: Request,
    op: Operation,
    call: Call,
    to_response: Callable[[Exception], Response],
) -> Response:
    """Run the POST ``op`` honouring its ``Idempotency-Key`` (when the client sent one)."""
    key = request.headers.get(HEADER)
    if key is None:
        return render(await run_in_threadpool(op.handler, call))
    if not _KEY.match(key):
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key: 1 to 255 printable ASCII characters"
        )
    app, token_id = call.app, call.token.id
    fingerprint = request_hash(op, call)
    stored = await run_in_threadpool(idempotency.claim, app, token_id, key, fingerprint)
    if stored is not None:
        if stored.request_hash != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request in the last 24 hours",
            )
        if stored.status == IN_PROGRESS:
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running; retry shortly",
                {"Retry-After": "1"},
            )
        headers = {**json.loads(stored.headers), "Idempotent-Replayed": "true"}
        return Response(stored.body, stored.status, headers=headers)
    try:
        response = render(await run_in_threadpool(op.handler, call))
    except Exception as exc:  # noqa: BLE001 - mapped to the response the client gets
        response = to_response(exc)
    if response.status_code >= 500:
        await run_in_threadpool(idempotency.release, app, token_id, key)
        return response
    kept = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
    body = bytes(response.body).decode("utf-8")
    await run_in_threadpool(
        idempotency.keep, app, token_id, key, response.status_code, body, json.dumps(kept)
    )
    return response

