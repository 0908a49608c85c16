"""Signed subscriber tokens for unsubscribe and preferences links (pure, no I/O).

A token is ``<payload>.<mac>``, both base64url: the payload holds the purpose, the
subscriber id, the digest id (empty for "all") and the issue time; the MAC is HMAC-SHA256
over it with the site's secret, truncated to 128 bits. A token made for one purpose is
useless for another, and editing any field breaks the MAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from publisher.errors import PublisherError


class TokenError(PublisherError):
    """A token that is malformed, forged, for another purpose, or expired."""


@dataclass(frozen=True)
class TokenData:
    """What a verified token says."""

    purpose: str
    subscriber_id: int
    digest_id: str
    issued_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16])


def make_token(
    secret: str, purpose: str, subscriber_id: int, digest_id: str, issued_at: datetime
) -> str:
    """Sign a token for ``purpose`` (e.g. ``unsubscribe``) and one subscriber."""
    payload = _b64(f"{purpose}:{subscriber_id}:{digest_id}:{int(issued_at.timestamp())}".encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_token(
    secret: str, token: str, purpose: str, now: datetime, max_age: timedelta | None = None
) -> TokenData:
    """Verify ``token`` for ``purpose``; raise TokenError when it must not be honoured."""
    payload, _, mac = token.partition(".")
    expected = _mac(secret, payload).encode("ascii")
    if not payload or not mac or not hmac.compare_digest(mac.encode("utf-8"), expected):
        raise TokenError("this link is not valid (it may be incomplete or altered)")
    try:
        kind, sub, digest, stamp = _unb64(payload).decode("ascii").split(":")
        data = TokenData(kind, int(sub), digest, datetime.fromtimestamp(int(stamp), UTC))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("this link is not valid") from exc
    if data.purpose != purpose:
        raise TokenError("this link is not meant for this page")
    if max_age is not None and now - data.issued_at > max_age:
        raise TokenError("this link has expired")
    return data
