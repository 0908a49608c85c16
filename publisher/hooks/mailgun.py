"""Mailgun's signed webhooks: HMAC-SHA256 of timestamp + token with the webhook signing
key, a recent timestamp, and ``event-data`` of ``failed`` or ``complained`` events
(pure but for the environment)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from publisher.config import MailgunHook
from publisher.deliver.feedback import FeedbackEvent, status_in
from publisher.hooks.common import Refused, fresh, json_body, secret


def check_signature(payload: Any, settings: MailgunHook) -> None:
    """The ``signature`` object must be Mailgun's HMAC with our key, and recent (403)."""
    key = secret(settings.signing_key_env, "[hooks.mailgun] signing_key_env")
    sig = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(sig, dict):
        raise Refused(403, "mailgun: no signature object")
    timestamp, token = str(sig.get("timestamp", "")), str(sig.get("token", ""))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(sig.get("signature", ""))):
        raise Refused(403, "mailgun: bad signature")
    fresh(timestamp, settings.max_age, "mailgun")


def parse(payload: dict[str, Any], now: datetime) -> list[FeedbackEvent]:
    """The event in ``event-data``: ``failed`` (a bounce) or ``complained``; others none."""
    data = payload.get("event-data")
    if not isinstance(data, dict) or "id" not in data:
        raise Refused(400, "mailgun: no event-data with an id")
    name = str(data.get("event", ""))
    if name not in ("failed", "complained"):
        return []
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    text = " ".join(str(status.get(k) or "") for k in ("message", "description")).strip()
    try:
        occurred = datetime.fromtimestamp(float(data.get("timestamp")), UTC)
    except (TypeError, ValueError):
        occurred = now
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    return [
        FeedbackEvent(
            provider="mailgun",
            event_id=str(data["id"]),
            kind="complaint" if name == "complained" else "bounce",
            email=str(data.get("recipient") or ""),
            occurred_at=occurred,
            message_id=str(headers.get("message-id") or variables.get("message_id") or ""),
            permanent=data.get("severity") == "permanent",
            status=str(status.get("enhanced-code") or "") or status_in(text),
            detail=f"{data.get('severity', name)}: {status.get('code', '')} {text}".strip(),
        )
    ]


async def events(request: Request, body: bytes, settings: MailgunHook, now: datetime) -> list[FeedbackEvent]:
    """Check a Mailgun webhook's signature and read its event."""
    payload = json_body(body)
    check_signature(payload, settings)
    return parse(payload, now)
