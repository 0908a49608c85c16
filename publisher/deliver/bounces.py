"""Bounce processing: delivery status notifications (RFC 3464) into subscriber states.

:func:`parse_bounce` is pure: one message's bytes in, the bounces it reports out. It reads
``multipart/report; report-type=delivery-status`` (Postfix, Gmail, Exim with DSNs, most
MTAs) and, for MTAs that send plain-text failure notices, the ``X-Failed-Recipients``
header (Exim's default). :func:`read_mailbox` reads a Maildir folder, an mbox file or a
single ``.eml`` file (disk I/O).

A *hard* bounce is a permanent failure about the address (``Action: failed`` with a 5.x.x
status, except a full mailbox, 5.2.2); it marks the subscriber ``bounced`` at once. Every
other failure or delay is *soft*: it is counted, and ``SOFT_LIMIT`` soft bounces within
``SOFT_WINDOW`` count as hard.
"""

from __future__ import annotations

import hashlib
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from publisher.errors import PublisherError

SOFT_LIMIT = 3
SOFT_WINDOW = timedelta(days=30)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"[^\s<>;,\"']+@[^\s<>;,\"']+")


@dataclass(frozen=True)
class Bounce:
    """One recipient's failure as reported by a DSN."""

    email: str
    kind: str  # "hard" or "soft"
    status: str
    diagnostic: str
    report_id: str
    occurred_at: datetime


def _address(value: str) -> str:
    # "rfc822; user@example.org" or "<user@example.org>"
    value = value.split(";", 1)[-1]
    match = _ADDRESS.search(value)
    return match.group(0).strip(".").lower() if match else ""


def classify(action: str, status: str) -> str | None:
    """``hard``, ``soft`` or None (a success notice) for a DSN's Action and Status."""
    action = action.strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    if action == "failed" and status.startswith("5.") and status != "5.2.2":
        return "hard"
    return "soft"


def _report_id(msg: Message, raw: bytes) -> str:
    message_id = str(msg.get("Message-ID") or "").strip()
    return message_id or "sha256:" + hashlib.sha256(raw).hexdigest()


def _occurred(msg: Message, fallback: datetime) -> datetime:
    try:
        when = parsedate_to_datetime(str(msg.get("Date")))
    except (TypeError, ValueError, IndexError):
        return fallback
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _status_blocks(msg: Message) -> Iterator[Message]:
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                yield from payload
            elif isinstance(payload, str | bytes):
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
                for block in re.split(r"\r?\n\r?\n", text):
                    if block.strip():
                        yield message_from_bytes(block.encode("utf-8"), policy=policy.default)


def parse_bounce(raw: bytes, now: datetime) -> list[Bounce]:
    """The bounces one message reports (empty when it is not a bounce)."""
    msg = message_from_bytes(raw, policy=policy.default)
    report_id = _report_id(msg, raw)
    occurred = _occurred(msg, now)
    bounces: dict[str, Bounce] = {}
    for block in _status_blocks(msg):
        recipient = _address(
            str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        )
        if not recipient:
            continue
        status_field = str(block.get("Status") or "")
        diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
        match = _STATUS.search(status_field) or _STATUS.search(diagnostic)
        status = ".".join(match.groups()) if match else "5.0.0"
        kind = classify(str(block.get("Action") or "failed"), status)
        if kind:
            bounces[recipient] = Bounce(
                recipient, kind, status, diagnostic[:1000], report_id, occurred
            )
    if not bounces and msg.get("X-Failed-Recipients"):
        body = _text_of(msg)
        match = _STATUS.search(body)
        status = ".".join(match.groups()) if match else "5.0.0"
        kind = "hard" if status.startswith("5.") and status != "5.2.2" else "soft"
        for address in str(msg["X-Failed-Recipients"]).split(","):
            email = _address(address)
            if email:
                bounces[email] = Bounce(
                    email, kind, status, body[:300].strip(), report_id, occurred
                )
    return list(bounces.values())


def _text_of(msg: Message) -> str:
    if isinstance(msg, EmailMessage):
        part = msg.get_body(("plain",))
        if part is not None:
            try:
                return " ".join(str(part.get_content()).split())
            except (LookupError, UnicodeError):
                return ""
    return ""


def read_mailbox(path: Path) -> Iterator[bytes]:
    """Every message in a Maildir folder, an mbox file or a single message file."""
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise PublisherError(f"{path}: not a Maildir (no cur/ or new/ folder)")
        box: mailbox.Mailbox = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        head = path.read_bytes()[:5]
        if head != b"From ":
            yield path.read_bytes()
            return
        box = mailbox.mbox(path, factory=None, create=False)
    else:
        raise PublisherError(f"{path}: no such Maildir folder or mbox file")
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()
