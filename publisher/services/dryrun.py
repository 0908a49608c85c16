"""What ``send --dry-run`` reports (store reads through the app; nothing is written).

A dry run asks the questions a real send asks, with the same code: the recipients of the
regular issue are counted with the very query that would queue them
(:meth:`publisher.store.planning.PlanningMixin.count_planned`: active subscribers of the
digest's native cadences whose topics match the issue), the roll-ups due now are listed
with their articles and recipients, and a ``send_window`` that would hold the messages is
named with the time it opens. So the count it prints is the count a real send queues.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from publisher.compose import planning, render
from publisher.config import DigestConfig
from publisher.models import Article, SendReport

if TYPE_CHECKING:
    from publisher.app import App


def _hold(report: SendReport, digest: DigestConfig, count: int, now: datetime) -> None:
    due_at = planning.window_start(digest.send_window, digest.timezone, now)
    if due_at > now and count:
        report.held, report.held_until = count, due_at


def regular_issue(
    app: App, digest: DigestConfig, period: planning.Period, articles: list[Article], now: datetime
) -> SendReport:
    """The regular issue a send would create now, and how many it would queue."""
    from publisher.services import cadence

    tags = {tag for article in articles for tag in article.tags}
    recipients = app.store.count_planned(digest.id, cadence.native_frequencies(digest, now), tags)
    subject = render.subject_for(digest, app.config.site, len(articles), now)
    report = SendReport(
        digest_id=digest.id,
        planned=recipients,
        note=(
            f"dry run: would create issue {period.key!r} with {len(articles)} article(s), "
            f"subject {subject!r}, for {recipients} subscriber(s)"
        ),
    )
    _hold(report, digest, recipients, now)
    return report


def rollups(app: App, digest: DigestConfig, now: datetime, new: list[Article]) -> list[SendReport]:
    """The roll-up issues a send would create now (see :mod:`publisher.services.cadence`).

    ``new`` are the articles of the regular issue the same send would create first; a
    roll-up due now holds them too, as it would after the real regular issue.
    """
    reports: list[SendReport] = []
    for frequency in planning.FREQUENCIES:
        if planning.is_native(digest, frequency, now):
            continue
        closing = planning.closing_fire(digest, frequency, now)
        if closing is None:
            continue
        key = planning.cadence_key(digest, closing, frequency)
        for cursor, subscriber_ids in sorted(
            app.store.rollup_groups(digest.id, frequency, key).items()
        ):
            since, _ = app.store.regular_articles_since(digest.id, cursor)
            article_ids = [a.id for a in new if a.id is not None and a.id not in since] + since
            if not article_ids:
                continue  # the real send only marks their period done: nothing goes out
            period = planning.rollup_period(key, frequency, cursor)
            report = SendReport(
                digest_id=digest.id,
                planned=len(subscriber_ids),
                note=(
                    f"dry run: would create roll-up {period!r} with {len(article_ids)} "
                    f"article(s) for {len(subscriber_ids)} subscriber(s)"
                ),
            )
            _hold(report, digest, len(subscriber_ids), now)
            reports.append(report)
    return reports


def open_issues(app: App, digest: DigestConfig, now: datetime) -> list[SendReport]:
    """The issues a send would resume, with what is queued and what is held."""
    reports: list[SendReport] = []
    for issue in app.store.open_issues(digest.id):
        counts = app.store.delivery_counts(issue.id)
        report = SendReport(
            digest_id=digest.id,
            issue=issue,
            note=f"dry run: issue {issue.period!r} has {counts['queued']} queued deliveries",
        )
        report.held, report.held_until = app.store.held_deliveries(issue.id, now)
        reports.append(report)
    return reports
