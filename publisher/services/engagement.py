"""Engagement tracking (store and clock I/O): tracked links at send time, hits, the purge.

Privacy first: nothing is tracked unless a digest sets ``track_clicks`` or ``track_opens``.
Each message then carries a random nonce in its links; the nonce is joined to a subscriber
only when the digest sets ``individual_tracking``. A hit is judged here:

- a HEAD request, a hit within ``bot_window_seconds`` of the message being made, or a known
  scanner's user agent is ``automated``;
- a hit on the canary link (in the HTML part only, invisible) is automated and turns every
  hit of the same message from the same client automated (the store applies that rule);
- an open fetched by a known image proxy (Apple Mail Privacy Protection, Gmail's proxy) is
  ``proxy``: the proxy fetched the image, which says nothing about a person reading it.

A hit whose link is older than ``retention_days`` or whose subscriber was erased still
redirects to the stored URL, but is not counted.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from publisher.app import App
from publisher.compose import render, tracking
from publisher.compose.links import TokenError
from publisher.config import DigestConfig
from publisher.errors import PublisherError
from publisher.models import Article
from publisher.store.engagement import AUTOMATED, HUMAN, PROXY, NewHit

PROXIES_FILE = Path(__file__).with_name("image_proxies.json")
# A transparent 1x1 GIF: the open pixel's body.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@dataclass(frozen=True)
class Proxies:
    """The dated snapshot of image proxies and scanners (package data)."""

    snapshot_date: str
    networks: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...]
    agents: tuple[str, ...]
    exact_agents: tuple[str, ...]
    scanners: tuple[str, ...]

    def proxy_of(self, ip: str, user_agent: str) -> str | None:
        """The name of the image proxy ``ip`` / ``user_agent`` belongs to, or None."""
        if user_agent.strip() in self.exact_agents or any(a in user_agent for a in self.agents):
            return "agent"
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        return next((name for name, net in self.networks if address in net), None)

    def is_scanner(self, user_agent: str) -> bool:
        """A link scanner, crawler or script by its user agent (or none at all)."""
        agent = user_agent.lower()
        return not agent.strip() or any(s in agent for s in self.scanners)


@lru_cache(maxsize=1)
def proxies() -> Proxies:
    """Load the shipped snapshot (once per process)."""
    data = json.loads(PROXIES_FILE.read_text(encoding="utf-8"))
    networks = tuple(
        (name, ipaddress.ip_network(cidr)) for name, cidrs in data["ranges"].items() for cidr in cidrs
    )
    agents = data["user_agents"]
    return Proxies(
        snapshot_date=data["snapshot_date"],
        networks=networks,
        agents=tuple(a for k, v in agents.items() if k != "apple_exact" for a in v),
        exact_agents=tuple(agents.get("apple_exact", ())),
        scanners=tuple(s.lower() for s in data["scanners"]),
    )


# -- at send time ------------------------------------------------------------------------


def issue_links(
    app: App, digest: DigestConfig, issue_id: int, articles: Sequence[Article],
    similar: Mapping[int, Sequence[Article]],
) -> render.IssueLinks:  # fmt: skip
    """Store the issue's article links (when the digest tracks clicks) for rendering."""
    if not (digest.track_clicks or digest.track_opens):
        return render.IssueLinks()
    tracked: dict[str, int] = {}
    if digest.track_clicks:
        rows: dict[str, int | None] = {}
        for article in articles:
            rows.setdefault(render.with_utm(article.url, digest), article.id)
            for other in similar.get(article.id or -1, ()):
                rows.setdefault(render.with_utm(other.url, digest), other.id)
        wanted = [(aid, url) for url, aid in rows.items() if url.startswith(("http://", "https://"))]
        tracked = app.store.ensure_links(issue_id, wanted, app.clock())
    return render.IssueLinks(tracked=tracked, pixel=digest.track_opens)


def per_message(
    app: App, digest: DigestConfig, issue_id: int, link_ids: set[int]
) -> Callable[[int], dict[str, str]] | None:
    """The per-recipient tracking values of an issue's messages, or None when off.

    Each call draws a fresh nonce; the subscriber id goes into the links only with
    ``individual_tracking``.
    """
    if not (digest.track_clicks or digest.track_opens):
        return None
    secret, base = app.secret(), app.config.web.base_url

    def values(subscriber_id: int) -> dict[str, str]:
        return tracking.tracking_values(
            base, secret, issue_id, sorted(link_ids),
            nonce=secrets.token_urlsafe(12),
            subscriber_id=subscriber_id if digest.individual_tracking else 0,
            sent_at=app.clock(), opens=digest.track_opens,
        )  # fmt: skip

    return values


# -- hits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Followed:
    """What a tracking URL answers: a redirect target (clicks), and whether it was counted."""

    kind: str
    url: str
    counted: bool
    verdict: str = ""
    reason: str = ""


class UnknownLink(PublisherError):
    """A well-signed token whose stored link does not exist (or is of another issue)."""


def _digest_of(app: App, issue_id: int) -> DigestConfig | None:
    issue = app.store.get_issue(issue_id)
    if issue is None:
        return None
    try:
        return app.config.digest(issue.digest_id)
    except PublisherError:
        return None


def client_hash(secret: str, ip: str, user_agent: str) -> str:
    """A keyed hash of the client's address and agent: equal for equal clients, nothing more."""
    mac = hmac.new(secret.encode(), f"engagement:{ip}\n{user_agent}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def judge(
    kind: str, method: str, ip: str, user_agent: str, age: timedelta, window_seconds: int
) -> tuple[str, str]:
    """The verdict and reason of one request, before the canary rule."""
    known = proxies()
    if method == "HEAD":
        return AUTOMATED, "head"
    if age < timedelta(seconds=window_seconds):
        return AUTOMATED, "prefetch"
    if kind == "open" and (proxy := known.proxy_of(ip, user_agent)):
        return PROXY, proxy
    if known.is_scanner(user_agent):
        return AUTOMATED, "scanner"
    return HUMAN, ""


def follow(
    app: App, token: str, *, method: str, ip: str, user_agent: str, pixel: bool = False
) -> Followed:
    """Resolve a tracking token and record the hit; raise TokenError or UnknownLink.

    ``pixel``: the request is for the open pixel (``/o/``), which takes open tokens only;
    links (``/r/``) take click and canary tokens only. The target of a click is the stored
    link's URL, never anything from the request.
    """
    secret = app.secret()
    hit = tracking.read_tracking_token(secret, token)
    kind = tracking.KINDS[hit.kind]
    if (kind == "open") != pixel:
        raise TokenError("this link is not meant for this page")
    url = app.config.site.url
    link_id: int | None = None
    if kind == "click":
        link = app.store.tracked_link(hit.link_id)
        if link is None or link.issue_id != hit.issue_id:
            raise UnknownLink("this link is not known here")
        url, link_id = link.url, link.id
    digest = _digest_of(app, hit.issue_id)
    now = app.clock()
    if digest is None or not (digest.track_clicks or digest.track_opens):
        return Followed(kind, url, False, reason="not tracked")
    if now - hit.sent_at > timedelta(days=digest.retention_days):
        return Followed(kind, url, False, reason="expired")
    subscriber_id = hit.subscriber_id if digest.individual_tracking and hit.subscriber_id else None
    if hit.subscriber_id:
        subscriber = app.store.subscriber_by_id(hit.subscriber_id)
        if subscriber is None or subscriber.status == "erased":
            return Followed(kind, url, False, reason="erased")
    verdict, reason = judge(kind, method, ip, user_agent, now - hit.sent_at, digest.bot_window_seconds)
    final = app.store.record_hit(
        NewHit(
            issue_id=hit.issue_id, link_id=link_id, kind=kind, nonce=hit.nonce,
            client_hash=client_hash(secret, ip, user_agent), at=now, verdict=verdict,
            reason=reason, subscriber_id=subscriber_id,
        )
    )  # fmt: skip
    return Followed(kind, url, True, final, reason if final == verdict else "canary")


# -- retention -------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    """What :func:`purge_engagement` removed."""

    hits: int
    subscriber_rows: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {"hits": self.hits, "subscriber_rows": self.subscriber_rows}


def purge_engagement(app: App, before: datetime) -> Purged:
    """Delete engagement rows past their retention; the per-issue counts stay the same.

    Per-subscriber rows go once older than their digest's ``retention_days`` (as of the
    app's clock) or than ``before``, whichever is sooner; anonymous hits older than
    ``before`` are folded into hourly roll-ups first. ``publisher purge`` calls this.
    """
    now = app.clock()
    rows = 0
    for digest in app.config.digests:
        cutoff = max(before, now - timedelta(days=digest.retention_days))
        rows += app.store.purge_subscriber_engagement(digest.id, cutoff)
    hits = app.store.purge_hits(before)
    return Purged(hits=hits, subscriber_rows=rows)
