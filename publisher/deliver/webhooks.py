"""Outgoing webhook requests (network I/O in :func:`post`; the rest is pure).

A request is a JSON envelope ``{"id", "type", "created_at", "data"}`` POSTed with
``Publisher-Signature: t=<unix>,v1=<hex>``, the HMAC-SHA256 under the hook's secret of
``"<t>.<body>"`` (the timestamp, a dot, the exact body bytes), as Stripe does: a receiver
recomputes it and refuses a timestamp older than five minutes, so a captured request
cannot be replayed later. ``Publisher-Event-Id`` lets it drop the duplicate a retry after
a lost answer brings.

The URL is the operator's: local and private addresses are allowed (a receiver on the
same host is common). Redirects are not followed, so a receiver cannot bounce the request
(and its signature) elsewhere; only a 2xx answer counts as delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from publisher import __version__

SIGNATURE_HEADER = "Publisher-Signature"
EVENT_ID_HEADER = "Publisher-Event-Id"
_ANSWER_BYTES = 300  # of a failed answer's body, kept as the error


def envelope(event_id: str, event_type: str, created_at: str, data_json: str) -> bytes:
    """The request body: the event's id, type, creation time and data, as compact JSON."""
    payload: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "created_at": created_at,
        "data": json.loads(data_json),
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Publisher-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "t.body">``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def headers(secret: str, event_id: str, event_type: str, attempt: int, body: bytes,
            timestamp: int) -> dict[str, str]:  # fmt: skip
    """Every header of one request, signed at ``timestamp``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": f"publisher/{__version__} (webhooks)",
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        EVENT_ID_HEADER: event_id,
        "Publisher-Event-Type": event_type,
        "Publisher-Attempt": str(attempt),
    }


def post(client: httpx.Client, url: str, body: bytes, request_headers: dict[str, str],
         timeout: float) -> tuple[int | None, str, int]:  # fmt: skip
    """POST once; return (status code or None, error or "", milliseconds taken).

    Only the first few hundred bytes of an answer are read: a receiver cannot make us
    hold a large body. A timeout, a refused connection or a TLS failure is an error with
    no status code.
    """
    started = time.monotonic()
    try:
        with client.stream(
            "POST", url, content=body, headers=request_headers, timeout=timeout,
            follow_redirects=False,
        ) as answer:  # fmt: skip
            code = answer.status_code
            text = b""
            if not 200 <= code < 300:
                for chunk in answer.iter_bytes():
                    text += chunk
                    if len(text) >= _ANSWER_BYTES:
                        break
            error = "" if 200 <= code < 300 else _describe(code, text)
    except httpx.TimeoutException:
        return None, f"timed out after {timeout:g}s", _ms(started)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300], _ms(started)
    return code, error, _ms(started)


def _describe(code: int, text: bytes) -> str:
    snippet = " ".join(text[:_ANSWER_BYTES].decode("utf-8", "replace").split())
    reason = "redirect (not followed)" if 300 <= code < 400 else "answered"
    return f"HTTP {code} {reason}" + (f": {snippet}" if snippet else "")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
