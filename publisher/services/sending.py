"""Sending (store, transport and clock I/O): create a digest's due issue and deliver open issues.

``send_digest`` is what ``send``, ``run`` and the daemon call for a digest; ``deliver_open_issue``
is what ``publisher worker`` calls for any open issue. Both go through the delivery engine in
:mod:`publisher.deliver.engine`, inside one registered :class:`SenderSession` per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from publisher.app import App
from publisher.compose import planning, render
from publisher.compose.links import make_token
from publisher.config import DigestConfig
from publisher.deliver.engine import deliver_issue, make_signer
from publisher.deliver.liveness import SenderSession
from publisher.models import Article, Issue, SendReport
from publisher.services import cadence, dryrun, guard
from publisher.services.archive import write_archive
from publisher.services.composing import message_template, next_issue_articles, render_issue
from publisher.store import PAUSED


def _message_label(issue: Issue) -> str:
    return f"{issue.digest_id}-{issue.period}-{issue.id}"


@contextmanager
def sender_session(app: App, command: str) -> Iterator[SenderSession]:
    """The app's registration as a sender; one for this block if the app has none yet.

    ``send``, ``run`` and ``worker`` wrap their whole life in this, so the process is one
    registered worker with one journal, however many issues it delivers.
    """
    if app.session is not None:
        yield app.session
        return
    session = SenderSession(app.store, app.config.delivery, app.clock, command)
    app.session = session
    try:
        with session:
            yield session
    finally:
        app.session = None


def deliver_open_issue(
    app: App, issue: Issue, stop: threading.Event | None = None
) -> SendReport:
    """Send the due deliveries of one open issue (of any digest) and close it when done.

    The issue's message template is built once here; ``stop`` ends the run gracefully,
    and so does an operator's pause of the issue (the report's note says so).
    Used by ``send`` (after creating the issue) and by ``publisher worker``.
    """
    digest = app.config.digest(issue.digest_id)
    report = SendReport(digest_id=digest.id, issue=issue)
    articles = app.store.articles_by_id(issue.article_ids)
    rendered = render_issue(app, digest, articles, issue.created_at, issue=issue, track=True)
    config = app.config
    template = message_template(app, digest, rendered, issue.id, issue.created_at, track=True)
    secret = app.secret()

    def token(purpose: str, subscriber_id: int, digest_id: str) -> str:
        return make_token(secret, purpose, subscriber_id, digest_id, issue.created_at)

    with sender_session(app, "deliver") as session:
        result = deliver_issue(
            app.store,
            template,
            app.new_transport,
            config.delivery,
            base_url=config.web.base_url,
            make_token=token,
            clock=app.clock,
            label=_message_label(issue),
            session=session,
            stop=stop,
            sign=make_signer(config.delivery),
            progress=app.progress(issue) if app.progress else None,
            relay_rates={r.label: r.rate for r in config.relay_list},
            watch=guard.IssueWatch(app, issue.id, issue.digest_id),
        )
    report.sent, report.failed, report.retrying = result.sent, result.failed, result.retrying
    report.bounced, report.recovered = result.bounced, result.recovered
    report.released, report.lost, report.held_by = result.released, result.lost, result.held
    if not app.store.finish_issue_if_done(issue.id, app.clock()) and app.store.issue_status(issue.id) == PAUSED:
        report.note = f"paused: the rest stays queued until `publisher issues resume {issue.id}`"
    return report


def send_digest(
    app: App,
    digest_id: str,
    *,
    dry_run: bool = False,
    stop: threading.Event | None = None,
    queue_only: bool = False,
) -> list[SendReport]:
    """Create the due issue of a digest (if it has new articles) and deliver open issues.

    Returns one report per issue touched. With ``dry_run`` nothing is written: the report
    says what the issue would hold and how many subscribers it would go to. With
    ``queue_only`` the issue is created and its deliveries queued, and ``publisher worker``
    processes send them.
    """
    digest = app.config.digest(digest_id)
    now = app.clock()
    period = planning.current_period(digest, now)
    reports: list[SendReport] = []
    if period is None:
        return [SendReport(digest_id=digest.id, note="its schedule has not fired yet")]
    existing = app.store.find_issue(digest.id, period.key)
    articles: list[Article] = []
    if existing is None:
        articles = next_issue_articles(app, digest)
        if not articles:
            reports.append(
                SendReport(digest_id=digest.id, note=f"no new articles for {period.key}")
            )
        elif dry_run:
            reports.append(dryrun.regular_issue(app, digest, period, articles, now))
        else:
            reports.append(_create_regular_issue(app, digest, period, articles, now))
    elif existing.status == "cancelled":
        # Say so, rather than "already sent": nobody got this period's issue from this run.
        reports.append(
            SendReport(
                digest_id=digest.id,
                note=f"issue {period.key} (#{existing.id}) was cancelled; nothing sent for this period",
            )
        )
    if dry_run:
        return _dry_run_tail(app, digest, period, existing, articles, reports, now)
    # Daily/weekly subscribers of a more frequent digest: roll-ups when their period closes.
    reports.extend(cadence.plan_rollups(app, digest, now))
    if queue_only:
        for report in reports:
            report.queued_only = report.issue is not None
        _note_held(app, reports)
        _note_paused(app, digest, reports)
        if not reports and existing is not None:
            note = f"issue {period.key} (#{existing.id}) was planned before: nothing more queued"
            reports.append(SendReport(digest_id=digest.id, note=note))
        return reports
    _deliver_open(app, digest, reports, stop)
    _note_held(app, reports)
    _note_paused(app, digest, reports)
    if not reports:
        reports.append(
            SendReport(digest_id=digest.id, issue=existing, note=f"issue {period.key} already sent")
        )
    return reports


def _dry_run_tail(
    app: App,
    digest: DigestConfig,
    period: planning.Period,
    existing: Issue | None,
    articles: list[Article],
    reports: list[SendReport],
    now: datetime,
) -> list[SendReport]:
    """A dry run's roll-ups and open issues after its regular issue; never silent."""
    reports.extend(dryrun.rollups(app, digest, now, articles))
    reports.extend(dryrun.open_issues(app, digest, now))
    _note_paused(app, digest, reports)
    if not reports and existing is not None:
        # A dry run must say something: here the period's issue went out already.
        note = f"dry run: issue {period.key} (#{existing.id}) already sent; nothing to send"
        reports.append(SendReport(digest_id=digest.id, note=note))
    return reports


def _deliver_open(
    app: App, digest: DigestConfig, reports: list[SendReport], stop: threading.Event | None
) -> None:
    """Deliver every open issue of ``digest``; fold the counts into the matching report."""
    for issue in app.store.open_issues(digest.id):
        if stop is not None and stop.is_set():
            break
        delivered = deliver_open_issue(app, issue, stop)
        match = next((r for r in reports if r.issue and r.issue.id == issue.id), None)
        if match:
            match.sent, match.failed, match.retrying = (
                delivered.sent,
                delivered.failed,
                delivered.retrying,
            )
            match.bounced, match.recovered = delivered.bounced, delivered.recovered
            match.released, match.lost = delivered.released, delivered.lost
            match.held_by, match.note = delivered.held_by, delivered.note or match.note
        else:
            delivered.note = "; ".join(filter(None, ("resumed", delivered.note)))
            reports.append(delivered)


def _note_held(app: App, reports: list[SendReport]) -> None:
    """Fill in how many of each issue's deliveries the send window still holds."""
    now = app.clock()
    for report in reports:
        if report.issue is not None:
            report.held, report.held_until = app.store.held_deliveries(report.issue.id, now)


def _note_paused(app: App, digest: DigestConfig, reports: list[SendReport]) -> None:
    """Say which of the digest's issues are paused, and so got nothing from this run."""
    for issue, queued in app.store.paused_issues(digest.id):
        if any(r.issue is not None and r.issue.id == issue.id for r in reports):
            continue  # paused while this run sent it: its own report says so
        note = (
            f"issue {issue.period} (#{issue.id}) is paused: {queued} queued, nothing sent; "
            f"`publisher issues resume {issue.id}` lets them go"
        )
        reports.append(SendReport(digest_id=digest.id, note=note))


def _create_regular_issue(
    app: App, digest: DigestConfig, period: planning.Period, articles: list[Article], now: datetime
) -> SendReport:
    """Create the period's issue and queue its deliveries (one set-based statement)."""
    subject = render.subject_for(digest, app.config.site, len(articles), now)
    issue, created = app.store.create_issue(
        digest.id, period.key, subject, [a.id for a in articles if a.id is not None], now
    )
    planned = (
        app.store.plan_deliveries(
            issue,
            now,
            frequencies=cadence.native_frequencies(digest, now),
            due_at=planning.window_start(digest.send_window, digest.timezone, now),
        )
        if created
        else 0
    )
    if created:
        write_archive(app, digest, issue)
    return SendReport(digest_id=digest.id, issue=issue, created=created, planned=planned)
