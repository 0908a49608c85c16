"""Per-subscriber cadence (store and disk I/O through the app): roll-up issues.

A subscription's ``frequency`` is ``every`` (each issue of the digest), ``daily`` or
``weekly``. When the digest's schedule never fires twice in one such period (a daily
subscriber of a daily or weekly digest), the cadence is *native* and the subscriber simply
gets every regular issue. Otherwise the subscriber is left out of the regular issues and,
once the fire that closes their cadence period has come (for a weekly subscriber of a
daily digest: the Sunday issue's fire time), gets one *roll-up issue* holding the articles
of every regular issue after their cursor.

A roll-up is an ordinary issue row (``issues.cadence`` = the frequency) with its own
articles and one ``deliveries`` row per recipient, so the ledger, the Message-ID per
(issue, subscriber), retries and ``publisher issues`` all work unchanged, and the issue is
still rendered and inlined once. Its period key (``2026-W48 weekly since #3``) names the
cadence period and the cursor it starts from, so two daemons building the same roll-up
collide on the unique ``(digest, period)``; creating it, queueing its deliveries and moving
the subscribers' cursors is one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from publisher.compose import planning, render
from publisher.config import DigestConfig
from publisher.models import SendReport

if TYPE_CHECKING:
    from publisher.app import App


def native_frequencies(digest: DigestConfig, now: datetime) -> list[str]:
    """The frequencies whose subscribers get every regular issue of ``digest``."""
    return [f for f in planning.FREQUENCIES if planning.is_native(digest, f, now)]


def plan_rollups(app: App, digest: DigestConfig, now: datetime) -> list[SendReport]:
    """Create the roll-up issues that are due at ``now``; one report per issue created."""
    from publisher.services import archive

    reports: list[SendReport] = []
    for frequency in planning.FREQUENCIES:
        if planning.is_native(digest, frequency, now):
            continue
        closing = planning.closing_fire(digest, frequency, now)
        if closing is None:
            continue
        key = planning.cadence_key(digest, closing, frequency)
        for cursor in sorted(app.store.rollup_groups(digest.id, frequency, key)):
            article_ids, upto = app.store.regular_articles_since(digest.id, cursor)
            articles = app.store.articles_by_id(article_ids)
            subject = render.subject_for(digest, app.config.site, len(articles), now)
            issue, planned = app.store.create_rollup(
                digest.id,
                frequency,
                key,
                planning.rollup_period(key, frequency, cursor),
                subject,
                cursor,
                upto,
                [a.id for a in articles if a.id is not None],
                now,
                due_at=planning.window_start(digest.send_window, digest.timezone, now),
            )
            if issue is not None:
                archive.write_archive(app, digest, issue)
                reports.append(
                    SendReport(digest_id=digest.id, issue=issue, created=True, planned=planned)
                )
    return reports


def set_frequency(app: App, subscriber_id: int, digest_ids: list[str], frequency: str) -> int:
    """Change a subscriber's cadence for these digests; their first roll-up comes when
    the cadence period they are in now closes. Returns how many subscriptions changed."""
    now = app.clock()
    done: dict[str, str | None] = {}
    for digest_id in digest_ids:
        digest = app.config.digest(digest_id)
        closing = None if frequency == "every" else planning.closing_fire(digest, frequency, now)
        done[digest_id] = (
            None if closing is None else planning.cadence_key(digest, closing, frequency)
        )
    return app.store.set_frequency(subscriber_id, done, frequency)
