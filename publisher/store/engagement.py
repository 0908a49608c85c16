"""Engagement in the store (database I/O): stored links, hits, opt-in subscriber rows, purge.

A hit is written with its verdict in one transaction that also applies the canary rule: a
hit on the canary link turns every hit of the same message (nonce) from the same client
(hash of IP and user agent) automated, and a hit after a canary from that client is
automated from the start. The reports sum the hits still kept and the hourly roll-ups of
those already purged, so purging never changes an issue's figures.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store.schema import issues
from publisher.store.schema_engagement import (
    engagement_hits,
    engagement_rollup,
    engagement_subscriber,
    tracked_links,
)

AUTOMATED, HUMAN, PROXY = "automated", "human", "proxy"


@dataclass(frozen=True)
class TrackedLink:
    """A link an issue's messages may redirect to."""

    id: int
    issue_id: int
    article_id: int | None
    url: str


@dataclass(frozen=True)
class NewHit:
    """A request on a tracking URL, with the verdict of the request alone."""

    issue_id: int
    link_id: int | None
    kind: str  # click, open or canary
    nonce: str
    client_hash: str
    at: datetime
    verdict: str
    reason: str
    subscriber_id: int | None = None  # only with individual_tracking


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def forget_engagement(conn: Connection, subscriber_id: int) -> None:
    """Erasure: delete the subscriber's per-subscriber engagement rows (the anonymous hits stay)."""
    conn.execute(delete(engagement_subscriber).where(engagement_subscriber.c.subscriber_id == subscriber_id))


def _hour(conn: Connection, column: Any) -> Any:
    """``column`` truncated to the hour, in the dialect's words."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00", column)


class EngagementMixin:
    """Links, hits and their counts; needs the Store's ``engine``."""

    engine: Engine

    def ensure_links(
        self, issue_id: int, links: Sequence[tuple[int | None, str]], now: datetime
    ) -> dict[str, int]:
        """Store the issue's ``(article_id, url)`` links (once each); map each URL to its id.

        Two processes sending the same issue may race here: the unique (issue, URL hash)
        lets one insert win and the other read it back.
        """
        for _ in range(2):
            try:
                with self.engine.begin() as conn:
                    known = {
                        r.url: r.id
                        for r in conn.execute(
                            select(tracked_links.c.id, tracked_links.c.url).where(
                                tracked_links.c.issue_id == issue_id
                            )
                        )
                    }
                    for article_id, url in links:
                        if url in known:
                            continue
                        known[url] = conn.execute(
                            insert(tracked_links).values(
                                issue_id=issue_id, article_id=article_id, url=url,
                                url_hash=_url_hash(url), created_at=now,
                            ).returning(tracked_links.c.id)
                        ).scalar_one()  # fmt: skip
                    return known
            except IntegrityError:
                continue
        raise RuntimeError(f"issue {issue_id}: its links could not be stored")

    def tracked_link(self, link_id: int) -> TrackedLink | None:
        """The stored link ``link_id``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tracked_links).where(tracked_links.c.id == link_id)).first()
        return None if row is None else TrackedLink(row.id, row.issue_id, row.article_id, row.url)

    def issue_links(self, issue_id: int) -> list[TrackedLink]:
        """Every stored link of an issue."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tracked_links).where(tracked_links.c.issue_id == issue_id).order_by(tracked_links.c.id)
            )
            return [TrackedLink(r.id, r.issue_id, r.article_id, r.url) for r in rows]

    def record_hit(self, hit: NewHit) -> str:
        """Store one hit (and its subscriber row when given); return its final verdict."""
        same_client = (engagement_hits.c.nonce == hit.nonce) & (
            engagement_hits.c.client_hash == hit.client_hash
        )
        with self.engine.begin() as conn:
            verdict, reason = hit.verdict, hit.reason
            if hit.kind == "canary":
                verdict, reason = AUTOMATED, "canary"
                conn.execute(
                    update(engagement_hits).where(same_client).values(verdict=AUTOMATED, reason="canary")
                )
            elif conn.scalar(
                select(engagement_hits.c.id).where(same_client, engagement_hits.c.kind == "canary").limit(1)
            ):
                verdict, reason = AUTOMATED, "canary"
            hit_id = conn.execute(
                insert(engagement_hits).values(
                    issue_id=hit.issue_id, link_id=hit.link_id, kind=hit.kind, nonce=hit.nonce,
                    client_hash=hit.client_hash, at=hit.at, verdict=verdict, reason=reason[:20],
                ).returning(engagement_hits.c.id)
            ).scalar_one()  # fmt: skip
            if hit.subscriber_id is not None:
                conn.execute(
                    insert(engagement_subscriber).values(
                        hit_id=hit_id, subscriber_id=hit.subscriber_id, issue_id=hit.issue_id, at=hit.at
                    )
                )
        return verdict

    def engagement_counts(self, issue_id: int) -> Counter[tuple[str, int | None, str]]:
        """``(kind, link_id, verdict) -> count`` of an issue: kept hits plus purged roll-ups."""
        counts: Counter[tuple[str, int | None, str]] = Counter()
        h, r = engagement_hits.c, engagement_rollup.c
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(h.kind, h.link_id, h.verdict, func.count())
                .where(h.issue_id == issue_id)
                .group_by(h.kind, h.link_id, h.verdict)
            ):
                counts[(row[0], row[1], row[2])] += row[3]
            for row in conn.execute(
                select(r.kind, r.link_id, r.verdict, func.sum(r.count))
                .where(r.issue_id == issue_id)
                .group_by(r.kind, r.link_id, r.verdict)
            ):
                counts[(row[0], row[1], row[2])] += int(row[3])
        return counts

    def click_series(self, issue_id: int) -> Counter[tuple[str, str]]:
        """``(hour "YYYY-MM-DD HH:00:00", verdict) -> clicks`` of an issue, roll-ups included."""
        series: Counter[tuple[str, str]] = Counter()
        h, r = engagement_hits.c, engagement_rollup.c
        with self.engine.connect() as conn:
            hour = _hour(conn, h.at)
            for row in conn.execute(
                select(hour, h.verdict, func.count())
                .where(h.issue_id == issue_id, h.kind == "click")
                .group_by(hour, h.verdict)
            ):
                series[(str(row[0])[:19], row[1])] += row[2]
            for row in conn.execute(
                select(r.hour, r.verdict, r.count).where(r.issue_id == issue_id, r.kind == "click")
            ):
                series[(row[0].strftime("%Y-%m-%d %H:00:00"), row[1])] += row[2]
        return series

    def subscriber_engagement(self, subscriber_id: int) -> list[dict[str, Any]]:
        """A subscriber's engagement rows (data export): issue, kind, link URL, verdict, time."""
        s, h, t = engagement_subscriber.c, engagement_hits.c, tracked_links.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.issue_id, h.kind, t.url, h.verdict, s.at)
                .select_from(
                    engagement_subscriber.join(engagement_hits, h.id == s.hit_id).outerjoin(
                        tracked_links, t.id == h.link_id
                    )
                )
                .where(s.subscriber_id == subscriber_id)
                .order_by(s.id)
            )
            return [dict(r._mapping) for r in rows]

    def purge_subscriber_engagement(self, digest_id: str, before: datetime) -> int:
        """Delete the per-subscriber rows of ``digest_id``'s issues older than ``before``."""
        s = engagement_subscriber.c
        of_digest = select(issues.c.id).where(issues.c.digest_id == digest_id)
        with self.engine.begin() as conn:
            result = conn.execute(delete(engagement_subscriber).where(s.at < before, s.issue_id.in_(of_digest)))
        return int(result.rowcount or 0)

    def purge_hits(self, before: datetime) -> int:
        """Fold hits older than ``before`` into hourly roll-ups and delete them (and their
        subscriber rows); the counts stay the same."""
        h = engagement_hits.c
        with self.engine.begin() as conn:
            hour = _hour(conn, h.at)
            groups = conn.execute(
                select(h.issue_id, h.link_id, h.kind, h.verdict, hour, func.count())
                .where(h.at < before)
                .group_by(h.issue_id, h.link_id, h.kind, h.verdict, hour)
            ).all()
            if groups:
                conn.execute(
                    insert(engagement_rollup),
                    [
                        {"issue_id": g[0], "link_id": g[1], "kind": g[2], "verdict": g[3],
                         "hour": _as_hour(g[4]), "count": g[5]}
                        for g in groups
                    ],
                )  # fmt: skip
            old = select(h.id).where(h.at < before)
            conn.execute(delete(engagement_subscriber).where(engagement_subscriber.c.hit_id.in_(old)))
            result = conn.execute(delete(engagement_hits).where(h.at < before))
        return int(result.rowcount or 0)


def _as_hour(value: Any) -> datetime:
    """A dialect's truncated hour (a datetime, or SQLite's text) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.strptime(str(value)[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
