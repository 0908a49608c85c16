"""Engagement links (pure, no I/O): signed click, open and canary tokens and their placeholders.

With ``track_clicks`` the issue is still rendered once: each tracked article link becomes a
placeholder ``PUBLISHER_LINK_<id>`` naming a *stored* link (issue, article, URL), and the
HTML part gets an invisible canary link (``PUBLISHER_CANARY_URL``) and, with
``track_opens``, a pixel (``PUBLISHER_PIXEL_URL``). Per recipient only those placeholders
are replaced by ``<base>/r/<token>`` (``<base>/o/<token>`` for the pixel).

A token is ``<payload>.<mac>`` (base64url, HMAC-SHA256 truncated to 128 bits, the same
scheme as :mod:`publisher.compose.links`, under its own purpose so that a tracking token
is useless as an unsubscribe token and the other way round). The payload holds the kind
(``c`` click, ``o`` open, ``k`` canary), the issue and the stored link's id, the message's random nonce,
the subscriber id (0 unless ``individual_tracking``) and the time the message was made.
The redirect target is never in the token: it is read from the stored link, so no token,
forged or genuine, can send a reader anywhere the issue did not link to.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from publisher.compose.links import TokenError, _b64, _mac, _unb64

PURPOSE = "track"
CLICK, OPEN, CANARY = "c", "o", "k"
KINDS = {CLICK: "click", OPEN: "open", CANARY: "canary"}
LINK_PREFIX = "PUBLISHER_LINK_"
CANARY_URL = "PUBLISHER_CANARY_URL"
PIXEL_URL = "PUBLISHER_PIXEL_URL"
PLACEHOLDERS = f"{LINK_PREFIX}\\d+|{CANARY_URL}|{PIXEL_URL}"
_LINK = re.compile(f"{LINK_PREFIX}(\\d+)")
_NONCE = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class Hit:
    """What a verified tracking token says."""

    kind: str
    issue_id: int
    link_id: int
    nonce: str
    subscriber_id: int
    sent_at: datetime


def link_placeholder(link_id: int) -> str:
    """The placeholder the rendered issue holds for stored link ``link_id``."""
    return f"{LINK_PREFIX}{link_id}"


def make_tracking_token(
    secret: str,
    kind: str,
    issue_id: int,
    link_id: int,
    nonce: str,
    subscriber_id: int,
    sent_at: datetime,
) -> str:
    """Sign a tracking token (``kind`` is CLICK, OPEN or CANARY; ``link_id`` 0 for the last two)."""
    if kind not in KINDS or not _NONCE.fullmatch(nonce):
        raise ValueError(f"bad tracking token fields: {kind!r}, {nonce!r}")
    stamp = int(sent_at.timestamp())
    raw = f"{PURPOSE}:{kind}:{issue_id}:{link_id}:{nonce}:{subscriber_id}:{stamp}"
    payload = _b64(raw.encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_tracking_token(secret: str, token: str) -> Hit:
    """Verify ``token``; raise TokenError when it is malformed, altered or not a tracking token."""
    payload, _, mac = token.partition(".")
    expected = _mac(secret, payload).encode("ascii")
    if not payload or not mac or not hmac.compare_digest(mac.encode("utf-8"), expected):
        raise TokenError("this link is not valid (it may be incomplete or altered)")
    try:
        purpose, kind, issue, link, nonce, sub, stamp = _unb64(payload).decode("ascii").split(":")
        sent_at = datetime.fromtimestamp(int(stamp), UTC)
        hit = Hit(kind, int(issue), int(link), nonce, int(sub), sent_at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("this link is not valid") from exc
    if purpose != PURPOSE or kind not in KINDS:
        raise TokenError("this link is not meant for this page")
    return hit


def tracking_values(
    base_url: str,
    secret: str,
    issue_id: int,
    link_ids: Iterable[int],
    *,
    nonce: str,
    subscriber_id: int,
    sent_at: datetime,
    opens: bool,
) -> dict[str, str]:
    """One message's placeholder values: each stored link's, the canary's and the pixel's URL.

    ``subscriber_id`` is 0 unless the digest has ``individual_tracking``: the nonce alone
    then ties the message's hits together without saying whose message it was.
    """
    base = base_url.rstrip("/")

    def url(path: str, kind: str, link_id: int) -> str:
        token = make_tracking_token(secret, kind, issue_id, link_id, nonce, subscriber_id, sent_at)
        return f"{base}/{path}/{token}"

    values = {link_placeholder(i): url("r", CLICK, i) for i in link_ids}
    values[CANARY_URL] = url("r", CANARY, 0)
    values[PIXEL_URL] = url("o", OPEN, 0) if opens else ""
    return values


def placeholder_links(body: str) -> set[int]:
    """The stored link ids a rendered body refers to."""
    return {int(m.group(1)) for m in _LINK.finditer(body)}
