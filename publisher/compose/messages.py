"""Mail messages (pure): a per-issue template, then cheap per-subscriber bytes.

:func:`prepare` is run once per issue. It encodes every header that is the same for all
recipients (From, Subject, Date, List-Id, MIME structure). :func:`personalize` then only
substitutes the placeholders, quoted-printable-encodes the two parts with
``binascii.b2a_qp`` and adds To, Message-ID and the List-Unsubscribe headers. Building an
``EmailMessage`` and calling ``as_bytes()`` per recipient costs several times more.

The output is an RFC 5322 message with CRLF line endings (smtplib sends bytes as given,
and strict servers reject bare LF). Every header value built from untrusted text goes
through :func:`publisher.compose.sanitize.clean_header_text` first.
"""

from __future__ import annotations

import binascii
import hashlib
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import urlsplit

from publisher.compose.plaintext import wrap_greeting
from publisher.compose.render import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, RenderedIssue
from publisher.compose.sanitize import clean_header_text
from publisher.compose.tracking import PLACEHOLDERS as TRACKING_PLACEHOLDERS

CRLF = "\r\n"
MAX_NAME = 100
_BARE_LF = re.compile(rb"(?<!\r)\n")
_PLACEHOLDER = re.compile(
    f"({GREETING}|{UNSUBSCRIBE_URL}|{PREFERENCES_URL}|{TRACKING_PLACEHOLDERS})"
)
# Our Message-IDs: <issue.subscriber.check@domain> (see message_id).
_OUR_ID = re.compile(r"(?<![\w.])(\d{1,12})\.(\d{1,12})\.([0-9a-f]{12})@")
_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True)
class _Body:
    """A body part split at its placeholders, each static piece encoded once.

    Quoted-printable allows a soft line break (``=CRLF``) anywhere, and decoders drop
    it, so ``piece0 =CRLF value0 =CRLF piece1 ...`` decodes to the substituted text while
    only the short values are encoded per recipient.
    """

    head: bytes
    pieces: tuple[bytes, ...]
    keys: tuple[str, ...]

    @classmethod
    def compile(cls, content_type: str, body: str) -> _Body:
        parts = _PLACEHOLDER.split(body)
        head = (
            f'Content-Type: {content_type}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        ).encode("ascii")
        return cls(head, tuple(_qp(p) for p in parts[0::2]), tuple(parts[1::2]))

    def fill(self, values: dict[str, str]) -> bytes:
        out = [self.head, self.pieces[0]]
        for key, piece in zip(self.keys, self.pieces[1:], strict=True):
            out += (_SOFT_BREAK, _qp(values[key]), _SOFT_BREAK, piece)
        # The CRLF before a boundary belongs to the boundary, so one more keeps the body's own.
        out.append(b"\r\n")
        return b"".join(out)


@dataclass(frozen=True)
class MessageTemplate:
    """Everything about an issue's message that does not depend on the recipient."""

    issue_id: int
    head: bytes
    text: _Body
    html: _Body
    boundary: str
    domain: str
    id_salt: str
    test: bool = False
    # Engagement tracking: a subscriber id's tracked-link, canary and pixel URLs (a fresh
    # nonce per message), made by the services layer; None when the digest tracks nothing.
    tracking: Callable[[int], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class Personal:
    """The per-recipient values substituted into a MessageTemplate."""

    subscriber_id: int
    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str


def personal(
    base_url: str,
    subscriber_id: int,
    email: str,
    name: str,
    digest_id: str,
    token: Callable[[str, int, str], str],
) -> Personal:
    """A recipient's values with their signed links: ``<base>/unsubscribe/<token>`` (bound to
    the digest, the list of ``List-Id``) and ``<base>/preferences/<token>``.

    ``token(purpose, subscriber_id, digest_id)`` signs; the web routes read the same paths.
    """
    base = base_url.rstrip("/")
    return Personal(
        subscriber_id=subscriber_id,
        email=email,
        name=name,
        unsubscribe_url=f"{base}/unsubscribe/{token('unsubscribe', subscriber_id, digest_id)}",
        preferences_url=f"{base}/preferences/{token('preferences', subscriber_id, '')}",
    )


def _header(name: str, value: str) -> str:
    """``Name: value`` folded to 78 columns, encoded as RFC 2047 when not ASCII."""
    value = clean_header_text(value, max_length=998)
    try:
        value.encode("ascii")
        charset = "us-ascii"
    except UnicodeEncodeError:
        charset = "utf-8"
    encoded = Header(value, charset=charset, header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}{CRLF}"


def _address(name: str, email: str) -> str:
    """``Name <email>``; a non-ASCII name is folded into several encoded words."""
    name = clean_header_text(name, max_length=MAX_NAME)
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        encoded = Header(name, charset="utf-8", header_name="To").encode(linesep=CRLF)
        return f"{encoded} <{email}>"
    return formataddr((name, email))


def message_id(template: MessageTemplate, subscriber_id: int) -> str:
    """The Message-ID of (issue, subscriber): the same on every resend."""
    check = message_id_check(template.id_salt, template.issue_id, subscriber_id)
    return f"<{template.issue_id}.{subscriber_id}.{check}@{template.domain}>"


def message_id_check(id_salt: str, issue_id: int, subscriber_id: int) -> str:
    """The check part of a Message-ID: 12 hex digits of SHA-256 over salt, issue, subscriber."""
    return hashlib.sha256(f"{id_salt}:{issue_id}:{subscriber_id}".encode()).hexdigest()[:12]


def id_salt_of(site_url: str, from_addr: str) -> str:
    """The salt :func:`prepare` puts in Message-IDs: the site's host (else the sender's domain)."""
    return urlsplit(site_url).hostname or from_addr.rpartition("@")[2] or "localhost"


def parse_message_id(value: str, id_salt: str) -> tuple[int, int] | None:
    """(issue, subscriber) of one of our Message-IDs (with or without <>), None otherwise.

    The check digits must match, so a forged or foreign Message-ID names nobody."""
    match = _OUR_ID.search(value or "")
    if not match:
        return None
    issue_id, subscriber_id = int(match.group(1)), int(match.group(2))
    if match.group(3) != message_id_check(id_salt, issue_id, subscriber_id):
        return None
    return issue_id, subscriber_id


def prepare(
    rendered: RenderedIssue,
    *,
    issue_id: int,
    site_title: str,
    site_url: str,
    digest_id: str,
    digest_title: str,
    from_addr: str,
    reply_to: str,
    now: datetime,
    test: bool = False,
    tracking: Callable[[int], Mapping[str, str]] | None = None,
) -> MessageTemplate:
    """Build the recipient-independent part of an issue's message (once per issue)."""
    domain = from_addr.rpartition("@")[2] or "localhost"
    host = id_salt_of(site_url, from_addr)
    boundary = (
        "=_publisher_" + hashlib.sha256(f"{issue_id}:{rendered.subject}".encode()).hexdigest()[:24]
    )
    subject = f"[TEST] {rendered.subject}" if test else rendered.subject
    lines = [
        f"From: {_address(site_title, from_addr)}{CRLF}",
        _header("Subject", subject),
        f"Date: {format_datetime(now)}{CRLF}",
        f"List-Id: {_address(digest_title, f'{digest_id}.{host}')}{CRLF}",
    ]
    if reply_to:
        reply_name, reply_address = parseaddr(clean_header_text(reply_to))
        lines.append(f"Reply-To: {_address(reply_name, reply_address)}{CRLF}")
    lines += [
        f"MIME-Version: 1.0{CRLF}",
        f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}',
    ]
    return MessageTemplate(
        issue_id=issue_id,
        head="".join(lines).encode("ascii"),
        text=_Body.compile("text/plain", rendered.text),
        html=_Body.compile("text/html", rendered.html),
        boundary=boundary,
        domain=domain,
        id_salt=host,
        test=test,
        tracking=tracking,
    )


def _qp(text: str) -> bytes:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", CRLF)
    encoded = binascii.b2a_qp(normalized.encode("utf-8"), istext=True)
    # b2a_qp writes soft line breaks as bare LF unless the input already held a CRLF.
    return _BARE_LF.sub(b"\r\n", encoded)


def _values(
    person: Personal, *, html_escape: bool, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    name = clean_header_text(person.name, max_length=MAX_NAME)
    greeting = f"Hi {name}," if name else "Hello,"
    values = {
        **(extra or {}),
        GREETING: greeting,
        UNSUBSCRIBE_URL: person.unsubscribe_url,
        PREFERENCES_URL: person.preferences_url,
    }
    if html_escape:
        return {k: html.escape(v) for k, v in values.items()}
    # The text part keeps lines within 78 columns: a long name wraps (HTML reflows itself).
    values[GREETING] = wrap_greeting(greeting)
    return values


def fill_placeholders(body: str, person: Personal, *, html: bool) -> str:
    """``body`` with the placeholders replaced for ``person`` (HTML-escaped when ``html``)."""
    values = _values(person, html_escape=html)
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], body)


def personalize(template: MessageTemplate, person: Personal) -> bytes:
    """The complete message bytes for one recipient."""
    name = clean_header_text(person.name, max_length=MAX_NAME)
    extra = template.tracking(person.subscriber_id) if template.tracking else None
    text_values = _values(person, html_escape=False, extra=extra)
    html_values = _values(person, html_escape=True, extra=extra)
    personal = (
        f"To: {_address(name, person.email)}{CRLF}"
        f"Message-ID: {message_id(template, person.subscriber_id)}{CRLF}"
        f"List-Unsubscribe: <{person.unsubscribe_url}>{CRLF}"
        f"List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}{CRLF}"
    ).encode()
    delimiter = f"--{template.boundary}{CRLF}".encode("ascii")
    return b"".join(
        (
            template.head,
            personal,
            b"This is a multipart message in MIME format.\r\n\r\n",
            delimiter,
            template.text.fill(text_values),
            delimiter,
            template.html.fill(html_values),
            f"--{template.boundary}--{CRLF}".encode("ascii"),
        )
    )
