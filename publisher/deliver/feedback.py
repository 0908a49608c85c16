"""Feedback from providers and mailbox providers: one event model, and ARF reports (pure).

:class:`FeedbackEvent` is a bounce or a complaint as a provider webhook (``publisher.hooks``)
or an ARF report reads it: who, which message (our Message-ID, when the report carries
it), and whether the failure is permanent. :func:`parse_arf` reads an RFC 5965 feedback
report (``multipart/report; report-type=feedback-report``), as Yahoo, Microsoft (JMRP),
Comcast, Fastmail and most feedback loops send them, into a complaint.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, message_from_string, policy
from email.message import Message
from email.utils import parsedate_to_datetime

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"[^\s<>;,\"']+@[^\s<>;,\"']+")
# Feedback types that are not a complaint about us (RFC 6650 "not-spam": a user moved
# our mail back out of the spam folder).
_NOT_COMPLAINTS = {"not-spam"}


@dataclass(frozen=True)
class FeedbackEvent:
    """One bounce or complaint reported by a provider.

    ``kind`` is ``bounce`` or ``complaint``; ``permanent`` is the provider's own verdict
    on a bounce (SES ``Permanent``, Postmark ``HardBounce``, ...); ``status`` the SMTP
    enhanced status code when there is one. ``issue_id``/``subscriber_id`` come from the
    provider's metadata, when we could put them there.
    """

    provider: str
    event_id: str
    kind: str
    email: str
    occurred_at: datetime
    message_id: str = ""
    permanent: bool = False
    status: str = ""
    detail: str = ""
    issue_id: int | None = None
    subscriber_id: int | None = None

    @property
    def hard(self) -> bool:
        """A hard bounce: marked permanent by the provider, or a 5.1.x status (bad address)."""
        return self.kind == "bounce" and (self.permanent or self.status.startswith("5.1."))


def status_in(*texts: str) -> str:
    """The first SMTP enhanced status code (``5.1.1``) found in ``texts``, else ``""``."""
    for text in texts:
        match = _STATUS.search(text or "")
        if match:
            return ".".join(match.groups())
    return ""


def address_in(value: str) -> str:
    """The email address in a header value (``rfc822; a@b``, ``<a@b>``), lowercased."""
    match = _ADDRESS.search(value.split(";", 1)[-1] if value else "")
    return match.group(0).strip(".<>").lower() if match else ""


def when(value: str | None, fallback: datetime) -> datetime:
    """An RFC 5322 or ISO 8601 date as an aware UTC datetime; ``fallback`` if unreadable."""
    if not value:
        return fallback
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return fallback
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parts(msg: Message) -> tuple[Message | None, Message | None]:
    """The feedback-report fields and the original message (or its headers)."""
    fields: Message | None = None
    original: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and fields is None:
            fields = _inner(part)
        elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _inner(part)
    return fields, original


def _inner(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload else None
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    if isinstance(payload, str):
        text = part.get_payload(decode=True)
        body = text.decode("utf-8", "replace") if isinstance(text, bytes) else payload
        return message_from_string(body.lstrip("\r\n"), policy=policy.default)
    return None


def is_arf(msg: Message) -> bool:
    """Whether a message is an RFC 5965 feedback report."""
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type") or "").lower() == "feedback-report"
    )


def parse_arf(raw: bytes, now: datetime) -> FeedbackEvent | None:
    """The complaint an ARF report makes; None when ``raw`` is not one (or is "not-spam").

    The recipient is ``Original-Rcpt-To`` (else the original message's ``To``); the
    message is the original's ``Message-ID``, which names the issue and subscriber even
    when the feedback loop redacted the address. The event id is the report's own
    Message-ID (else a hash of the report), so importing a mailbox twice counts it once.
    """
    msg = message_from_bytes(raw, policy=policy.default)
    if not is_arf(msg):
        return None
    fields, original = _parts(msg)
    if fields is None:
        return None
    feedback_type = str(fields.get("Feedback-Type") or "abuse").strip().lower()
    if feedback_type in _NOT_COMPLAINTS:
        return None
    email = address_in(str(fields.get("Original-Rcpt-To") or ""))
    message_id = ""
    if original is not None:
        email = email or address_in(str(original.get("To") or ""))
        message_id = str(original.get("Message-ID") or "").strip()
    report_id = str(msg.get("Message-ID") or "").strip()
    agent = str(fields.get("User-Agent") or "").strip()
    return FeedbackEvent(
        provider="arf",
        event_id=report_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        kind="complaint",
        email=email,
        # When the reader complained: the report's date (Arrival-Date is when our
        # message arrived, which may be days earlier).
        occurred_at=when(str(msg.get("Date") or ""), now),
        message_id=message_id,
        status=feedback_type[:20],
        detail=f"ARF {feedback_type} report" + (f" from {agent}" if agent else ""),
    )  # fmt: skip
