"""One cycle of the job, and the composition root that wires config, store and transports.

``collect -> store -> feeds -> due digests -> deliver``. The pure modules (planning, render,
syndication, messages) compute; this module is the single place that hands their results
to the store, the disk and the transports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from publisher import clock as clock_module
from publisher.collect import registry as sources
from publisher.compose import messages, planning, render
from publisher.compose.links import make_token
from publisher.config import Config, DigestConfig, SourceConfig, secret_from_env
from publisher.deliver import bounces, imap
from publisher.deliver.engine import DeliveryResult, deliver_issue, make_signer
from publisher.deliver.liveness import SenderSession
from publisher.deliver.transports import Transport, make_transport, write_atomic
from publisher.errors import DeliveryError, PublisherError, SubscriberError, TransportError
from publisher.models import Article, CollectReport, Issue, SendReport
from publisher.services import dryrun
from publisher.store import Store
from publisher.syndicate import writer as feedwriter

SIMILAR_POOL = 500
FETCH_WORKERS = 4
POLITENESS_SECONDS = 1.0
FAILURE_ALERT_AFTER = 3
FEED_LINKS = {
    "rss": ("rss.xml", "application/rss+xml", "RSS"),
    "atom": ("atom.xml", "application/atom+xml", "Atom"),
    "json": ("feed.json", "application/feed+json", "JSON Feed"),
}


@dataclass
class App:
    """The wired application: config, store, clock and (lazily) templates and transport."""

    config: Config
    store: Store
    clock: Callable[[], datetime] = clock_module.now
    transport_factory: Callable[[], Transport] | None = None
    # Makes a progress callback for one issue's delivery run (the CLI's bar or log lines).
    progress: Callable[[Issue], Callable[[DeliveryResult], None]] | None = None
    # This process's registration as a sender (``send``, ``run`` and ``worker`` open one
    # for their whole life); without it each delivery run registers for its own length.
    session: SenderSession | None = None
    _templates: render.Templates | None = field(default=None, repr=False)

    @property
    def templates(self) -> render.Templates:
        """Templates, loaded on first use."""
        if self._templates is None:
            self._templates = render.load_templates(self.config.site.templates_dir)
        return self._templates

    def new_transport(self) -> Transport:
        """A fresh transport for one sending thread."""
        if self.transport_factory is not None:
            return self.transport_factory()
        return make_transport(self.config, self.store)

    @property
    def site_host(self) -> str:
        """The site's host name, used in tag: URIs."""
        return urlsplit(self.config.site.url).hostname or "localhost"

    def secret(self) -> str:
        """The signing secret: from ``[web] secret_env``, else generated once per store."""
        return secret_from_env(self.config.web.secret_env, what="[web] secret_env") or (
            self.store.signing_secret()
        )


def open_app(
    config: Config, clock: Callable[[], datetime] = clock_module.now, *, create: bool = True
) -> App:
    """Open the store (migrating it) and wire the application.

    ``create=False`` (read-only commands): a missing SQLite file is an error, not created.
    """
    return App(config=config, store=Store.open(config.store_url, create=create), clock=clock)


# -- collect -------------------------------------------------------------------------


def _collect_group(
    app: App, group: list[SourceConfig], states: dict[str, dict[str, Any]], now: datetime
) -> list[tuple[SourceConfig, sources.Collected]]:
    """Collect the sources of one host one after another, with a politeness delay."""
    results = []
    for index, source in enumerate(group):
        if index:
            time.sleep(POLITENESS_SECONDS)
        row = states.get(source.name)
        state = sources.SourceState(
            etag=row["etag"] if row else None,
            last_modified=row["last_modified"] if row else None,
            seen_before=bool(row and row["last_success_at"]),
        )
        try:
            collected = sources.collect(source, app.config.site.url, state, now)
        except PublisherError as exc:
            collected = sources.Collected(failed=f"source {source.name!r}: {exc}")
        results.append((source, collected))
    return results


def collect(app: App, on_source: Callable[[int], None] | None = None) -> CollectReport:
    """Collect every source into the store; one bad item or source never stops the rest.

    Remote sources are fetched concurrently, one worker per host so that a host is never
    hit by two requests at once. A source that keeps failing is reported on its first
    failure and again when it reaches ``FAILURE_ALERT_AFTER`` runs in a row, not on every
    run; ``publisher status`` always shows it.

    ``on_source(n)`` is told each time ``n`` more sources are done (for a progress bar).
    """
    report = CollectReport()
    now = app.clock()
    states = {row["source"]: row for row in app.store.source_states()}
    groups: dict[str, list[SourceConfig]] = {}
    for source in app.config.sources:
        host = (urlsplit(source.url).hostname or "") if source.url else f"local:{source.name}"
        groups.setdefault(host, []).append(source)
    with ThreadPoolExecutor(max_workers=min(FETCH_WORKERS, max(1, len(groups)))) as pool:
        def run_group(group: list[SourceConfig]) -> list[tuple[SourceConfig, sources.Collected]]:
            results = _collect_group(app, group, states, now)
            if on_source:
                on_source(len(group))
            return results

        batches = list(pool.map(run_group, groups.values()))
    for source, collected in (item for batch in batches for item in batch):
        report.errors.extend(collected.errors)
        for article in collected.articles:
            outcome = app.store.upsert_article(article, now, app.site_host)
            setattr(report, outcome, getattr(report, outcome) + 1)
        failures = app.store.record_source_run(
            source.name,
            now,
            collected.failed,
            etag=collected.etag,
            last_modified=collected.last_modified,
        )
        if collected.failed:
            report.failed_sources.append(source.name)
        if collected.failed and failures == 1:
            report.errors.append(collected.failed)
        elif collected.failed and failures == FAILURE_ALERT_AFTER:
            report.errors.append(f"{collected.failed} (failing for {failures} runs in a row)")
    return report


# -- feeds ---------------------------------------------------------------------------

FeedsReport = feedwriter.FeedsReport
slugify = feedwriter.slugify


def write_feeds(app: App, *, force: bool = False) -> FeedsReport:
    """Write every configured feed (see :mod:`publisher.syndicate.writer`): only what changed.

    ``force`` rebuilds every file instead of trusting the last build's fingerprints;
    files are still written only when their bytes changed.
    """
    return feedwriter.write_feeds(app.config, app.store, app.clock(), force=force)


# -- digests -------------------------------------------------------------------------


def _message_label(issue: Issue) -> str:
    return f"{issue.digest_id}-{issue.period}-{issue.id}"


def archive_url(app: App, issue: Issue) -> str:
    """The public URL of an issue's "view in browser" page."""
    return f"{app.config.web.base_url.rstrip('/')}/archive/{archive_name(issue)}"


def archive_name(issue: Issue) -> str:
    """An issue's archive page path below the archive folder: ``<digest>/<period>.html``."""
    return f"{issue.digest_id}/{slugify(issue.period)}.html"


def render_issue(
    app: App,
    digest: DigestConfig,
    articles: list[Article],
    at: datetime,
    *,
    issue: Issue | None = None,
    archive: bool = False,
) -> render.RenderedIssue:
    """Render an issue of ``digest`` holding ``articles`` as of ``at``.

    With ``issue``, the email links to the issue's archive page; ``archive`` renders that
    page itself (no personal data, no placeholders).
    """
    pool = app.store.recent_articles(SIMILAR_POOL)
    similar = {a.id: render.similar_articles(a, pool) for a in articles if a.id is not None}
    base = app.config.web.base_url.rstrip("/")
    links = render.IssueLinks(
        view_url=archive_url(app, issue) if issue else "",
        more_url=f"{base}/archive/",
        subscribe_url=f"{base}/subscribe",
    )
    return render.render_issue(
        app.templates, app.config.site, digest, articles, at, similar=similar, links=links, archive=archive
    )


def write_archive(app: App, digest: DigestConfig, issue: Issue) -> Path:
    """Write the issue's "view in browser" page and refresh the archive index (disk I/O)."""
    root = app.config.web.archive_dir
    articles = app.store.articles_by_id(issue.article_ids)
    page = render_issue(app, digest, articles, issue.created_at, issue=issue, archive=True)
    path = root / archive_name(issue)
    write_atomic(path, page.html.encode("utf-8"))
    write_archive_index(app)
    return path


def write_archive_index(app: App) -> None:
    """Rewrite ``<archive_dir>/index.html`` listing every issue, newest first."""
    issues = app.store.list_issues(5000)
    digests = []
    for digest in app.config.digests:
        tz = ZoneInfo(digest.timezone)
        entries = [
            {"href": archive_name(i), "subject": i.subject, "date": render.format_date(i.created_at, tz)}
            for i in issues
            # Only issues with a page: roll-ups for weekly readers and cancelled issues have none.
            if i.digest_id == digest.id and i.status != "cancelled"
            and (app.config.web.archive_dir / archive_name(i)).exists()
        ]
        digests.append({"title": digest.title, "issues": entries})
    feeds_url = app.config.feeds_url.rstrip("/")
    feeds = [
        {"type": mime, "title": f"{app.config.site.title} ({label})", "url": f"{feeds_url}/{name}"}
        for kind, (name, mime, label) in FEED_LINKS.items()
        if kind in app.config.feeds.formats
    ]
    html = app.templates.env.get_template("archive_index.html.j2").render(
        site=app.config.site, digests=digests, feeds=feeds
    )
    write_atomic(app.config.web.archive_dir / "index.html", html.encode("utf-8"))


def next_issue_articles(app: App, digest: DigestConfig) -> list[Article]:
    """The articles the next issue of ``digest`` would hold (nothing is written)."""
    return planning.select_articles(digest, app.store.unissued_articles(digest.id))


@dataclass(frozen=True)
class Preview:
    """An issue rendered as it would be sent, for ``preview`` and ``send --to``."""

    label: str
    issue: Issue
    articles: list[Article]
    rendered: render.RenderedIssue


def preview_issue(app: App, digest_id: str) -> Preview:
    """The next issue of a digest as it would be sent now (or, with no new articles, the
    latest one). Nothing is written to the store."""
    digest = app.config.digest(digest_id)
    now = app.clock()
    articles = next_issue_articles(app, digest)
    if articles:
        period = planning.current_period(digest, now)
        key = period.key if period else now.date().isoformat()
        subject = render.subject_for(digest, app.config.site, len(articles), now)
        issue = Issue(id=0, digest_id=digest.id, period=key, subject=subject, created_at=now)
        label = f"next issue {key}"
    else:
        latest = next((i for i in app.store.list_issues(500) if i.digest_id == digest.id), None)
        if latest is None:
            raise PublisherError(f"digest {digest.id!r} has no new articles and no past issue to preview")
        issue = latest
        articles = app.store.articles_by_id(latest.article_ids)
        label = f"issue {latest.period} (no new articles since)"
    rendered = render_issue(app, digest, articles, issue.created_at, issue=issue)
    return Preview(label=label, issue=issue, articles=articles, rendered=rendered)


def personal_for(
    app: App, subscriber_id: int, email: str, name: str, digest_id: str, at: datetime
) -> messages.Personal:
    """The per-recipient values of a message: signed unsubscribe and preferences URLs."""
    secret = app.secret()
    return messages.personal(
        app.config.web.base_url,
        subscriber_id,
        email,
        name,
        digest_id,
        lambda purpose, sid, did: make_token(secret, purpose, sid, did, at),
    )


def preview_personal(app: App, preview: Preview, email: str | None) -> messages.Personal:
    """A real subscriber's values (``email`` given), else a sample reader's."""
    if email:
        subscriber = app.store.find_subscriber(email)
        if subscriber is None:
            raise SubscriberError(f"no subscriber with address {email!r}")
        return personal_for(
            app, subscriber.id, subscriber.email, subscriber.name, preview.issue.digest_id, app.clock()
        )
    base = app.config.web.base_url.rstrip("/")
    return messages.Personal(0, "reader@example.org", "Reader", f"{base}/unsubscribe/preview", f"{base}/preferences/preview")


def personalized_parts(preview: Preview, person: messages.Personal) -> tuple[str, str]:
    """The preview's HTML and text with the placeholders filled as ``personalize`` does."""
    return messages.fill_placeholders(preview.rendered.html, person, html=True), messages.fill_placeholders(
        preview.rendered.text, person, html=False
    )


def message_template(
    app: App,
    digest: DigestConfig,
    rendered: render.RenderedIssue,
    issue_id: int,
    at: datetime,
    *,
    test: bool = False,
) -> messages.MessageTemplate:
    """The recipient-independent message of an issue, with the configured sender."""
    config = app.config
    return messages.prepare(
        rendered,
        issue_id=issue_id,
        site_title=config.delivery.from_name or config.site.title,
        site_url=config.site.url,
        digest_id=digest.id,
        digest_title=digest.title,
        from_addr=config.delivery.from_,
        reply_to=config.delivery.reply_to,
        now=at,
        test=test,
    )


def send_test(app: App, digest_id: str, to: str) -> Preview:
    """Send one ``[TEST]`` copy of the next issue to ``to``; record no delivery."""
    preview = preview_issue(app, digest_id)
    digest = app.config.digest(digest_id)
    config = app.config
    template = message_template(app, digest, preview.rendered, preview.issue.id, app.clock(), test=True)
    base = config.web.base_url.rstrip("/")
    person = messages.Personal(0, to, "", f"{base}/unsubscribe/test", f"{base}/preferences/test")
    transport = app.new_transport()
    transport.open()
    try:
        transport.send(config.delivery.from_, to, messages.personalize(template, person), f"test-{digest.id}")
    except DeliveryError as exc:
        raise TransportError(f"test copy to {to} refused: {exc.message}") from exc
    finally:
        transport.close()
    return preview


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

    The issue's message template is built once here; ``stop`` ends the run gracefully.
    Used by ``send`` (after creating the issue) and by ``publisher worker``.
    """
    digest = app.config.digest(issue.digest_id)
    report = SendReport(digest_id=digest.id, issue=issue)
    articles = app.store.articles_by_id(issue.article_ids)
    rendered = render_issue(app, digest, articles, issue.created_at, issue=issue)
    config = app.config
    template = message_template(app, digest, rendered, issue.id, issue.created_at)
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
        )
    report.sent, report.failed, report.retrying = result.sent, result.failed, result.retrying
    report.bounced, report.recovered = result.bounced, result.recovered
    report.released, report.lost, report.held_by = result.released, result.lost, result.held
    app.store.finish_issue_if_done(issue.id)
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
        reports.extend(dryrun.rollups(app, digest, now, articles))
        reports.extend(dryrun.open_issues(app, digest, now))
        if not reports and existing is not None:
            # A dry run must say something: here the period's issue went out already.
            note = f"dry run: issue {period.key} (#{existing.id}) already sent; nothing to send"
            reports.append(SendReport(digest_id=digest.id, note=note))
        return reports
    from publisher.services import cadence

    # Daily/weekly subscribers of a more frequent digest: roll-ups when their period closes.
    reports.extend(cadence.plan_rollups(app, digest, now))
    if queue_only:
        for report in reports:
            report.queued_only = report.issue is not None
        _note_held(app, reports)
        if not reports and existing is not None:
            note = f"issue {period.key} (#{existing.id}) was planned before: nothing more queued"
            reports.append(SendReport(digest_id=digest.id, note=note))
        return reports
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
            match.held_by = delivered.held_by
        else:
            delivered.note = "resumed"
            reports.append(delivered)
    _note_held(app, reports)
    if not reports:
        reports.append(
            SendReport(digest_id=digest.id, issue=existing, note=f"issue {period.key} already sent")
        )
    return reports


def _note_held(app: App, reports: list[SendReport]) -> None:
    """Fill in how many of each issue's deliveries the send window still holds."""
    now = app.clock()
    for report in reports:
        if report.issue is not None:
            report.held, report.held_until = app.store.held_deliveries(report.issue.id, now)


def _create_regular_issue(
    app: App, digest: DigestConfig, period: planning.Period, articles: list[Article], now: datetime
) -> SendReport:
    """Create the period's issue and queue its deliveries (one set-based statement)."""
    from publisher.services import cadence

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


@dataclass
class BounceReport:
    """What a bounce import or IMAP poll did."""

    messages: int = 0
    not_bounces: int = 0
    hard: int = 0
    soft: int = 0
    unknown: int = 0
    duplicates: int = 0
    marked: list[str] = field(default_factory=list)


def import_bounce(app: App, raw: bytes, report: BounceReport) -> bool:
    """Record the bounces one message reports; return whether it was a bounce."""
    now = app.clock()
    report.messages += 1
    found = bounces.parse_bounce(raw, now)
    if not found:
        report.not_bounces += 1
        return False
    for bounce in found:
        setattr(report, bounce.kind, getattr(report, bounce.kind) + 1)
        outcome = app.store.record_bounce(
            bounce.email,
            bounce.kind,
            bounce.status,
            bounce.diagnostic,
            bounce.report_id,
            bounce.occurred_at,
            now,
            soft_limit=bounces.SOFT_LIMIT,
            soft_window=bounces.SOFT_WINDOW,
        )
        if outcome == "bounced":
            report.marked.append(f"{bounce.email} ({bounce.kind}, {bounce.status})")
        elif outcome == "unknown":
            report.unknown += 1
        elif outcome == "duplicate":
            report.duplicates += 1
    return True


def poll_bounces(app: App) -> tuple[BounceReport, int]:
    """Poll the [bounces] IMAP folder once; return the report and how many were moved."""
    report = BounceReport()
    _, moved = imap.poll(app.config.bounces, lambda raw: import_bounce(app, raw, report))
    return report, moved


@dataclass
class RunReport:
    """What ``run --once`` did."""

    collected: CollectReport
    feeds: FeedsReport
    sends: list[SendReport]
    errors: list[str] = field(default_factory=list)


def run_once(app: App, stop: threading.Event | None = None) -> RunReport:
    """Collect, write feeds, then send every due digest; one failing digest never stops others."""
    collected = collect(app)
    feeds = write_feeds(app)
    sends: list[SendReport] = []
    errors: list[str] = []
    for digest in app.config.digests:
        try:
            sends.extend(send_digest(app, digest.id, stop=stop))
        except PublisherError as exc:
            errors.append(f"digest {digest.id!r}: {exc}")
    return RunReport(collected=collected, feeds=feeds, sends=sends, errors=errors)
