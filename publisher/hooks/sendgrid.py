"""SendGrid's signed event webhook: an ECDSA P-256 signature over timestamp + body, with
the verification key SendGrid shows (base64 DER, or PEM), and a batch of events of which
``bounce`` and ``spamreport`` matter (pure but for the environment)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request

from publisher.config import SendgridHook
from publisher.deliver.feedback import FeedbackEvent, status_in
from publisher.hooks.common import Refused, fresh, json_body, secret

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER (as SendGrid shows it) or PEM form; 503
    when it is neither, since that is the operator's to fix."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text.strip()))
    except (ValueError, binascii.Error):
        raise Refused(503, "[hooks.sendgrid] public_key_env: not an ECDSA public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Refused(503, "[hooks.sendgrid] public_key_env: not an ECDSA public key")
    return key


def check_signature(request: Request, body: bytes, settings: SendgridHook) -> None:
    """The signature headers must verify over timestamp + raw body, recently (403)."""
    key = public_key(secret(settings.public_key_env, "[hooks.sendgrid] public_key_env"))
    timestamp = request.headers.get(TIMESTAMP, "")
    try:
        signature = base64.b64decode(request.headers.get(SIGNATURE, ""), validate=True)
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature, ValueError):
        raise Refused(403, "sendgrid: bad or missing signature") from None
    fresh(timestamp, settings.max_age, "sendgrid")


def _event(item: dict[str, Any], now: datetime) -> FeedbackEvent | None:
    name = str(item.get("event", ""))
    if name not in ("bounce", "spamreport") or not item.get("sg_event_id"):
        return None
    reason = str(item.get("reason") or "")
    try:
        occurred = datetime.fromtimestamp(float(item.get("timestamp")), UTC)
    except (TypeError, ValueError):
        occurred = now
    # A "bounce" of type "blocked" is a refusal of this message, not of the address.
    permanent = name == "bounce" and str(item.get("type") or "bounce") == "bounce"
    return FeedbackEvent(
        provider="sendgrid",
        event_id=str(item["sg_event_id"]),
        kind="complaint" if name == "spamreport" else "bounce",
        email=str(item.get("email") or ""),
        occurred_at=occurred,
        message_id=str(item.get("smtp-id") or item.get("message_id") or ""),
        permanent=permanent,
        status=status_in(str(item.get("status") or ""), reason),
        detail=f"{item.get('type', name)}: {reason}".strip(": "),
    )


def parse(payload: Any, now: datetime) -> list[FeedbackEvent]:
    """The bounce and spam-report events of a SendGrid batch (a JSON array)."""
    if not isinstance(payload, list):
        raise Refused(400, "sendgrid: expected a JSON array of events")
    found = (_event(item, now) for item in payload if isinstance(item, dict))
    return [event for event in found if event is not None]


async def events(request: Request, body: bytes, settings: SendgridHook, now: datetime) -> list[FeedbackEvent]:
    """Check a SendGrid webhook's signature and read its events."""
    check_signature(request, body, settings)
    return parse(json_body(body), now)
