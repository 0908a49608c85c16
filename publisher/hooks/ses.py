"""Amazon SES events through an SNS HTTPS subscription (network I/O: the signing
certificate and the subscription confirmation).

Every SNS message is signed: the canonical "Key\\nValue\\n" string of its fields is
verified with the public key of the certificate at ``SigningCertURL``
(``SignatureVersion`` 1: SHA1 with RSA; 2: SHA256 with RSA). The certificate is fetched
only from an allowed host (``sns.<region>.amazonaws.com``, over https, or a host listed
in ``[hooks.ses] cert_hosts``) and cached. A ``SubscriptionConfirmation`` is confirmed by
fetching its ``SubscribeURL`` (same host rule); a ``Notification`` carries an SES
``Bounce`` or ``Complaint`` notification (or event) as JSON in ``Message``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request

from publisher.config import SNS_HOST, SesHook
from publisher.deliver.feedback import FeedbackEvent, status_in, when
from publisher.hooks.common import Refused, json_body

log = logging.getLogger(__name__)

# The fields signed, in order, per message type (SNS developer guide, "Verifying the
# signatures of Amazon SNS messages"); a field absent from the message is left out.
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERT_BYTES = 64 * 1024
_CERTS: dict[str, rsa.RSAPublicKey] = {}  # SigningCertURL -> key: the cert rarely changes


def allowed(url: str, settings: SesHook) -> bool:
    """Whether ``url`` is on an allowed host: an https SNS host, or one of ``cert_hosts``."""
    parts = urlsplit(url)
    if parts.netloc in settings.cert_hosts or (parts.hostname or "") in settings.cert_hosts:
        return parts.scheme in ("https", "http")
    return parts.scheme == "https" and bool(SNS_HOST.match(parts.hostname or ""))


def canonical(message: dict[str, Any]) -> bytes:
    """The string SNS signs for this message."""
    fields = SIGNED.get(str(message.get("Type")))
    if fields is None:
        raise Refused(400, f"ses: unknown SNS message type {message.get('Type')!r}")
    return "".join(
        f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None
    ).encode("utf-8")


async def _certificate(url: str, settings: SesHook) -> rsa.RSAPublicKey:
    if not allowed(url, settings):
        raise Refused(403, f"ses: SigningCertURL host not allowed: {url[:200]!r}")
    key = _CERTS.get(url)
    if key is not None:
        return key
    try:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
            response = await client.get(url)
        response.raise_for_status()
        if len(response.content) > MAX_CERT_BYTES:
            raise ValueError("certificate too large")
        public = x509.load_pem_x509_certificate(response.content).public_key()
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused(503, f"ses: cannot fetch the signing certificate: {exc}") from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise Refused(403, "ses: the signing certificate has no RSA key")
    if len(_CERTS) > 32:  # a few regions' certificates at most; never grow without bound
        _CERTS.clear()
    _CERTS[url] = public
    return public


async def verify(message: dict[str, Any], settings: SesHook) -> None:
    """Check the SNS signature and the topic (403 when either is wrong)."""
    algorithm = HASHES.get(str(message.get("SignatureVersion", "1")))
    if algorithm is None:
        raise Refused(403, "ses: unknown SignatureVersion")
    if settings.topic_arns and message.get("TopicArn") not in settings.topic_arns:
        raise Refused(403, "ses: the SNS topic is not in [hooks.ses] topic_arns")
    key = await _certificate(str(message.get("SigningCertURL", "")), settings)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm())
    except (binascii.Error, InvalidSignature, ValueError):
        raise Refused(403, "ses: bad SNS signature") from None


async def confirm(message: dict[str, Any], settings: SesHook) -> None:
    """Confirm a subscription by fetching its SubscribeURL (only on an allowed host)."""
    url = str(message.get("SubscribeURL", ""))
    if not settings.confirm_subscriptions:
        log.warning("SNS subscription to %s not confirmed (confirm_subscriptions = false): "
                    "confirm it by hand at %s", message.get("TopicArn"), url)  # fmt: skip
        return
    if not allowed(url, settings):
        raise Refused(403, f"ses: SubscribeURL host not allowed: {url[:200]!r}")
    try:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
            (await client.get(url)).raise_for_status()
    except httpx.HTTPError as exc:
        raise Refused(503, f"ses: confirming the subscription failed: {exc}") from None
    log.info("SNS subscription to %s confirmed", message.get("TopicArn"))


def _message_id(mail: dict[str, Any]) -> str:
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value") or "")
    return str(common.get("messageId") or "")


def parse(notification: Any, now: datetime) -> list[FeedbackEvent]:
    """The events of an SES Bounce or Complaint notification (or event); none for others."""
    if not isinstance(notification, dict):
        return []
    kind = str(notification.get("notificationType") or notification.get("eventType") or "")
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    message_id = _message_id(mail)
    events = []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        for rcpt in bounce.get("bouncedRecipients") or []:
            diagnostic = str(rcpt.get("diagnosticCode") or bounce.get("bounceSubType") or "")
            events.append(FeedbackEvent(
                provider="ses", event_id=f"{bounce.get('feedbackId')}:{rcpt.get('emailAddress')}",
                kind="bounce", email=str(rcpt.get("emailAddress") or ""),
                occurred_at=when(bounce.get("timestamp"), now), message_id=message_id,
                permanent=permanent, status=status_in(str(rcpt.get("status") or ""), diagnostic),
                detail=f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}: {diagnostic}",
            ))  # fmt: skip
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        for rcpt in complaint.get("complainedRecipients") or []:
            events.append(FeedbackEvent(
                provider="ses", event_id=f"{complaint.get('feedbackId')}:{rcpt.get('emailAddress')}",
                kind="complaint", email=str(rcpt.get("emailAddress") or ""),
                occurred_at=when(complaint.get("timestamp"), now), message_id=message_id,
                status=str(complaint.get("complaintFeedbackType") or "abuse")[:20],
                detail=f"complaint ({complaint.get('userAgent') or 'SES'})",
            ))  # fmt: skip
    return events


async def events(request: Request, body: bytes, settings: SesHook, now: datetime) -> list[FeedbackEvent]:
    """Verify an SNS message; confirm a subscription, or read the SES events it carries."""
    message = json_body(body)
    if not isinstance(message, dict):
        raise Refused(400, "ses: expected an SNS message object")
    await verify(message, settings)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        await confirm(message, settings)
        return []
    if kind != "Notification":
        return []
    try:
        notification = json.loads(str(message.get("Message", "")))
    except ValueError:
        return []  # a plain-text message on the topic (a test publish): nothing to record
    return parse(notification, now)
