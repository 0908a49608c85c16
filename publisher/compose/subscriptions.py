"""The subscribers' side, pure parts (no I/O): forms, CSRF tokens, addresses, messages.

What the web endpoints and ``subscribers import --pending`` compute before they touch the
store or a transport: reading and checking the sign-up and preferences forms (urlencoded
or multipart bodies), the signed double-submit CSRF token, the hash an erased address is
kept as, the confirmation email's bytes and the JSON document of a data export.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

from email_validator import EmailNotValidError, validate_email

from publisher.compose.sanitize import clean_header_text
from publisher.errors import SubscriberError
from publisher.models import Subscriber

CONFIRM_PURPOSE = "confirm"
UNSUBSCRIBE_PURPOSE = "unsubscribe"
PREFERENCES_PURPOSE = "preferences"
CONFIRM_MAX_AGE = timedelta(days=7)
CSRF_MAX_AGE = timedelta(days=1)
ONE_CLICK = ("List-Unsubscribe", "One-Click")
MAX_NAME = 100
MAX_TAGS = 100
MAX_FIELDS = 200

Form = dict[str, list[str]]


class FormError(SubscriberError):
    """A form that cannot be accepted; ``errors`` maps each field to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


# -- addresses -------------------------------------------------------------------------


def normalize_address(raw: str) -> str:
    """Check an address's syntax (no DNS) and return it in canonical lower case."""
    raw = raw.strip()
    if not raw:
        raise SubscriberError("enter your email address")
    try:
        result = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"this is not a valid email address ({exc})") from exc
    return result.normalized.lower()


# An ASCII dot-atom local part (RFC 5322) needs no check beyond this pattern and its length;
# email-validator would accept it unchanged. Everything else takes the full check.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_CACHE_MAX = 100_000


class AddressCheck:
    """The check of :func:`normalize_address` for bulk imports: each domain is checked by
    email-validator once, and a plain ASCII local part by a pattern. Same answers, many
    times faster on a list where thousands of addresses share a few domains."""

    def __init__(self) -> None:
        self._domains: dict[str, str] = {}

    def __call__(self, raw: str) -> str:
        """The normalized address, or SubscriberError saying what is wrong."""
        raw = raw.strip()
        local, at, domain = raw.rpartition("@")
        if at and len(local) <= 64 and _DOT_ATOM.fullmatch(local):
            known = self._domains.get(domain)
            if known is None:
                try:
                    known = validate_email(
                        f"a@{domain}", check_deliverability=False, allow_smtputf8=False
                    ).domain.lower()
                except EmailNotValidError:
                    known = ""  # the full check below words the error
                if len(self._domains) < _DOMAIN_CACHE_MAX:
                    self._domains[domain] = known
            if known and len(local) + 1 + len(known) <= 254:
                return f"{local.lower()}@{known}"
        try:
            result = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            raise SubscriberError(f"invalid address {raw!r}: {exc}") from exc
        return result.normalized.lower()


def email_hash(address: str) -> str:
    """The SHA-256 hex digest an erased address is remembered by (suppression list)."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def mask_address(address: str) -> str:
    """``ana@example.org`` -> ``a**@example.org``: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(2, min(len(local) - 1, 6))}@{domain}"


def clean_name(raw: str) -> str:
    """A display name as it may go into a header: one line, no encoded words, capped."""
    return clean_header_text(raw, max_length=MAX_NAME)


# -- CSRF: a signed double-submit token --------------------------------------------------


def _mac(secret: str, message: str) -> str:
    digest = hmac.new(f"csrf:{secret}".encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def make_csrf(secret: str, nonce: str, now: datetime) -> str:
    """A CSRF token ``nonce.time.mac``: set as a cookie and repeated in each form."""
    stamp = str(int(now.timestamp()))
    return f"{nonce}.{stamp}.{_mac(secret, f'{nonce}.{stamp}')}"


def csrf_valid(
    secret: str, token: str | None, now: datetime, max_age: timedelta = CSRF_MAX_AGE
) -> bool:
    """Whether ``token`` is one this site signed, within ``max_age``."""
    if not token or len(token) > 200:
        return False
    nonce, _, rest = token.partition(".")
    stamp, _, mac = rest.partition(".")
    if not (nonce and stamp.isdigit() and mac):
        return False
    if not hmac.compare_digest(mac.encode(), _mac(secret, f"{nonce}.{stamp}").encode()):
        return False
    issued = datetime.fromtimestamp(int(stamp), UTC)
    return timedelta(minutes=-5) <= now - issued <= max_age


def csrf_check(secret: str, cookie: str | None, submitted: str | None, now: datetime) -> bool:
    """The double-submit check: the form's token equals the cookie's, and it is signed."""
    if not cookie or not submitted or not hmac.compare_digest(cookie.encode(), submitted.encode()):
        return False
    return csrf_valid(secret, submitted, now)


# -- forms --------------------------------------------------------------------------------


def parse_form(body: bytes, content_type: str) -> Form:
    """The fields of an ``application/x-www-form-urlencoded`` or ``multipart/form-data`` body.

    Anything else (or a body that does not parse) is an empty form. At most
    ``MAX_FIELDS`` values are read.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    form: Form = {}
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode(
            "latin-1", "replace"
        )
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return form
        for part in list(message.iter_parts())[:MAX_FIELDS]:
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str) or part.get_filename():
                continue
            payload = part.get_payload(decode=True) or b""
            form.setdefault(name, []).append(payload.decode("utf-8", "replace").strip("\r\n"))
        return form
    if kind in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return form
        try:
            return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            return form
    return form


def first(form: Form, name: str) -> str:
    """The first value of a field ('' when absent)."""
    values = form.get(name) or [""]
    return values[0]


def is_one_click(form: Form) -> bool:
    """RFC 8058: the body holds ``List-Unsubscribe=One-Click``."""
    return first(form, ONE_CLICK[0]).strip() == ONE_CLICK[1]


@dataclass(frozen=True)
class SignupForm:
    """A checked sign-up: a normalized address, a clean name, known digests and tags."""

    email: str
    name: str
    digests: tuple[str, ...]
    tags: tuple[str, ...]


def _choices(
    form: Form, name: str, allowed: Sequence[str], errors: dict[str, str], what: str
) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(v.strip() for v in form.get(name, []) if v.strip()))
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        errors[name] = f"unknown {what}: {', '.join(unknown[:3])}"[:200]
    if len(chosen) > MAX_TAGS:
        errors[name] = f"choose at most {MAX_TAGS} {what}s"
    return tuple(v for v in chosen if v in allowed)


def read_signup(form: Form, digest_ids: Sequence[str], tags: Sequence[str]) -> SignupForm:
    """Check the sign-up form; raise FormError naming each bad field."""
    errors: dict[str, str] = {}
    email = ""
    try:
        email = normalize_address(first(form, "email"))
    except SubscriberError as exc:
        errors["email"] = exc.message
    name = clean_name(first(form, "name"))
    digests = _choices(form, "digest", digest_ids, errors, "newsletter")
    if len(digest_ids) == 1 and not form.get("digest"):
        digests = tuple(digest_ids)
    if not digests and "digest" not in errors:
        errors["digest"] = "choose at least one newsletter"
    chosen_tags = _choices(form, "tag", tags, errors, "topic")
    if errors:
        raise FormError(errors)
    return SignupForm(email=email, name=name, digests=digests, tags=chosen_tags)


@dataclass(frozen=True)
class PreferencesForm:
    """A checked preferences form."""

    name: str
    digests: tuple[str, ...]
    frequency: str
    tags: tuple[str, ...]


def read_preferences(
    form: Form, digest_ids: Sequence[str], tags: Sequence[str], frequencies: Sequence[str]
) -> PreferencesForm:
    """Check the preferences form; raise FormError naming each bad field."""
    errors: dict[str, str] = {}
    digests = _choices(form, "digest", digest_ids, errors, "newsletter")
    chosen_tags = _choices(form, "tag", tags, errors, "topic")
    frequency = first(form, "frequency").strip() or frequencies[0]
    if frequency not in frequencies:
        errors["frequency"] = f"choose one of {', '.join(frequencies)}"
    if errors:
        raise FormError(errors)
    return PreferencesForm(
        name=clean_name(first(form, "name")), digests=digests, frequency=frequency, tags=chosen_tags
    )


# -- the confirmation email ---------------------------------------------------------------


def confirmation_message(
    *,
    site_title: str,
    from_addr: str,
    reply_to: str,
    to_addr: str,
    to_name: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    now: datetime,
) -> bytes:
    """The confirmation email (multipart/alternative, CRLF line endings)."""
    message = EmailMessage(policy=policy.SMTP)
    local, _, domain = from_addr.rpartition("@")
    message["From"] = Address(clean_header_text(site_title, max_length=MAX_NAME), local, domain)
    to_local, _, to_domain = to_addr.rpartition("@")
    message["To"] = Address(clean_name(to_name), to_local, to_domain)
    if reply_to:
        message["Reply-To"] = clean_header_text(reply_to, max_length=998)
    message["Subject"] = clean_header_text(subject, max_length=998)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=policy.SMTP)


# -- data export --------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def export_document(
    subscriber: Subscriber,
    subscriptions: Iterable[Mapping[str, Any]],
    history: Iterable[Mapping[str, Any]],
    now: datetime,
    engagement: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything kept about a subscriber, as one JSON-ready document.

    ``engagement``: their clicks and opens, kept only for digests with individual_tracking.
    """
    return {
        "exported_at": now.isoformat(),
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "created_at": subscriber.created_at.isoformat(),
        "subscriptions": [{k: _iso(v) for k, v in s.items()} for s in subscriptions],
        "deliveries": [{k: _iso(v) for k, v in h.items()} for h in history],
        "engagement": [{k: _iso(v) for k, v in e.items()} for e in engagement],
    }
