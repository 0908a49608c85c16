"""Postmark's bounce and spam-complaint webhooks: HTTP basic auth, one JSON record per
request (``RecordType`` ``Bounce`` or ``SpamComplaint``) (pure but for the environment)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import datetime
from typing import Any

from starlette.requests import Request

from publisher.config import PostmarkHook
from publisher.deliver.feedback import FeedbackEvent, status_in, when
from publisher.hooks.common import Refused, json_body, secret

# Postmark's bounce types (https://postmarkapp.com/developer/api/bounce-api): these are
# failures about the address; the others (auto-responders, challenges, ...) are ignored.
PERMANENT = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
TRANSIENT = {"SoftBounce", "Transient", "DnsError"}
COMPLAINTS = {"SpamComplaint"}
_HEADER_ID = re.compile(r"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def check_auth(request: Request, settings: PostmarkHook) -> None:
    """The request's basic auth must be the configured user and password (403 otherwise)."""
    user = secret(settings.username_env, "[hooks.postmark] username_env")
    password = secret(settings.password_env, "[hooks.postmark] password_env")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    expected = f"{user}:{password}"
    if scheme.lower() != "basic" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(403, "postmark: wrong or missing basic auth credentials")


def parse(record: Any, now: datetime) -> list[FeedbackEvent]:
    """The event of one Postmark bounce or spam-complaint record (none for other types)."""
    if not isinstance(record, dict) or "ID" not in record:
        raise Refused(400, "postmark: expected a bounce or spam-complaint record with an ID")
    kind_name = str(record.get("Type") or record.get("RecordType") or "")
    if kind_name in COMPLAINTS or record.get("RecordType") == "SpamComplaint":
        kind = "complaint"
    elif kind_name in PERMANENT or kind_name in TRANSIENT:
        kind = "bounce"
    else:
        return []
    content = str(record.get("Content") or "")
    found = _HEADER_ID.search(content)
    details = str(record.get("Details") or record.get("Description") or "")
    metadata = record.get("Metadata") if isinstance(record.get("Metadata"), dict) else {}
    return [
        FeedbackEvent(
            provider="postmark",
            event_id=str(record["ID"]),
            kind=kind,
            email=str(record.get("Email") or ""),
            occurred_at=when(record.get("BouncedAt"), now),
            message_id=found.group(1) if found else str(metadata.get("message_id", "")),
            permanent=kind_name in PERMANENT,
            status=status_in(details, content[:2000]),
            detail=f"{kind_name}: {details}".strip(": "),
        )
    ]


async def events(request: Request, body: bytes, settings: PostmarkHook, now: datetime) -> list[FeedbackEvent]:
    """Authenticate a Postmark webhook request and read its event."""
    check_auth(request, settings)
    return parse(json_body(body), now)
