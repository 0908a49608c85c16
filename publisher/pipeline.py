"""One cycle of the job, and the composition root that wires config, store and transports.

``collect -> store -> feeds -> due digests -> deliver``. The pure modules (planning, render,
syndication, messages) compute; this module is the single place that hands their results
to the store, the disk and the transports.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from publisher import clock as clock_module
from publisher import messages, planning, render, sources, syndication
from publisher.config import Config, DigestConfig, secret_from_env
from publisher.delivery import deliver_issue
from publisher.errors import PublisherError
from publisher.models import Article, CollectReport, Issue, SendReport
from publisher.store import Store
from publisher.tokens import make_token
from publisher.transports import Transport, make_transport, write_atomic


@dataclass
class App:
    """The wired application: config, store, clock and (lazily) templates and transport."""

    config: Config
    store: Store
    clock: Callable[[], datetime] = clock_module.now
    transport_factory: Callable[[], Transport] | None = None
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
        return make_transport(self.config)

    @property
    def site_host(self) -> str:
        """The site's host name, used in tag: URIs."""
        return urlsplit(self.config.site.url).hostname or "localhost"

    def secret(self) -> str:
        """The signing secret: from ``[web] secret_env``, else generated once per store."""
        return secret_from_env(self.config.web.secret_env, what="[web] secret_env") or (
            self.store.signing_secret()
        )


def open_app(config: Config, clock: Callable[[], datetime] = clock_module.now) -> App:
    """Open the store (migrating it) and wire the application."""
    return App(config=config, store=Store.open(config.store_url), clock=clock)


# -- collect -------------------------------------------------------------------------


def collect(app: App) -> CollectReport:
    """Collect every source into the store; one bad item or source never stops the rest."""
    report = CollectReport()
    now = app.clock()
    for source in app.config.sources:
        try:
            articles, errors = sources.collect(source, app.config.site.url)
        except PublisherError as exc:
            articles, errors = [], [f"source {source.name!r}: {exc}"]
        report.errors.extend(errors)
        for article in articles:
            outcome = app.store.upsert_article(article, now, app.site_host)
            setattr(report, outcome, getattr(report, outcome) + 1)
        app.store.record_source_run(source.name, now, "; ".join(errors)[:2000] if errors else None)
    return report


# -- feeds ---------------------------------------------------------------------------


@dataclass
class FeedsReport:
    """Which feed files were rewritten and which were already up to date."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    entries: int = 0


def slugify(text: str) -> str:
    """A file-name-safe slug of a tag or author name."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "untitled"


def _write_if_changed(path: Path, data: bytes, report: FeedsReport) -> None:
    try:
        if path.read_bytes() == data:
            report.unchanged.append(path)
            return
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    report.written.append(path)


def write_feeds(app: App) -> FeedsReport:
    """Write each configured feed format (and per-tag feeds) atomically when it changed."""
    config = app.config
    site = config.site
    now = app.clock()
    report = FeedsReport()
    out = config.feeds.output_dir
    articles = app.store.recent_articles(config.feeds.limit)
    report.entries = len(articles)
    channel = syndication.Channel(
        title=site.title,
        site_url=site.url,
        feeds_url=config.feeds_url,
        description=site.description,
        language=site.language,
        author=site.author,
    )
    for kind in config.feeds.formats:
        data = syndication.build(kind, articles, channel, now)
        _write_if_changed(out / syndication.FILENAMES[kind], data, report)
    if config.feeds.per_tag:
        for tag in app.store.all_tags():
            tagged = app.store.articles_with_tag(tag, config.feeds.limit)
            slug = slugify(tag)
            tag_channel = syndication.Channel(
                title=f"{site.title}: {tag}",
                site_url=site.url,
                feeds_url=f"{config.feeds_url.rstrip('/')}/tags/{slug}",
                description=f"Articles tagged {tag}",
                language=site.language,
                author=site.author,
            )
            for kind in config.feeds.formats:
                data = syndication.build(kind, tagged, tag_channel, now)
                _write_if_changed(out / "tags" / slug / syndication.FILENAMES[kind], data, report)
    return report


# -- digests -------------------------------------------------------------------------


def _message_label(issue: Issue) -> str:
    return f"{issue.digest_id}-{issue.period}-{issue.id}"


def render_issue(
    app: App, digest: DigestConfig, articles: list[Article], at: datetime
) -> render.RenderedIssue:
    """Render an issue of ``digest`` holding ``articles`` as of ``at``."""
    return render.render_issue(app.templates, app.config.site, digest, articles, at)


def next_issue_articles(app: App, digest: DigestConfig) -> list[Article]:
    """The articles the next issue of ``digest`` would hold (nothing is written)."""
    return planning.select_articles(digest, app.store.unissued_articles(digest.id))


def _deliver(
    app: App, digest: DigestConfig, issue: Issue, stop: threading.Event | None
) -> SendReport:
    report = SendReport(digest_id=digest.id, issue=issue)
    articles = app.store.articles_by_id(issue.article_ids)
    rendered = render_issue(app, digest, articles, issue.created_at)
    config = app.config
    template = messages.prepare(
        rendered,
        issue_id=issue.id,
        site_title=config.site.title,
        site_url=config.site.url,
        digest_id=digest.id,
        digest_title=digest.title,
        from_addr=config.delivery.from_,
        reply_to=config.delivery.reply_to,
        now=issue.created_at,
    )
    secret = app.secret()

    def token(purpose: str, subscriber_id: int, digest_id: str) -> str:
        return make_token(secret, purpose, subscriber_id, digest_id, issue.created_at)

    result = deliver_issue(
        app.store,
        template,
        app.new_transport,
        config.delivery,
        base_url=config.web.base_url,
        make_token=token,
        clock=app.clock,
        label=_message_label(issue),
        stop=stop,
    )
    report.sent, report.failed, report.retrying = result.sent, result.failed, result.retrying
    app.store.finish_issue_if_done(issue.id)
    return report


def send_digest(
    app: App, digest_id: str, *, dry_run: bool = False, stop: threading.Event | None = None
) -> list[SendReport]:
    """Create the due issue of a digest (if it has new articles) and deliver open issues.

    Returns one report per issue touched. With ``dry_run`` nothing is written: the report
    says what the issue would hold and how many subscribers it would go to.
    """
    digest = app.config.digest(digest_id)
    now = app.clock()
    period = planning.current_period(digest, now)
    reports: list[SendReport] = []
    if period is None:
        return [SendReport(digest_id=digest.id, note="its schedule has not fired yet")]
    existing = app.store.find_issue(digest.id, period.key)
    if existing is None:
        articles = next_issue_articles(app, digest)
        if not articles:
            reports.append(
                SendReport(digest_id=digest.id, note=f"no new articles for {period.key}")
            )
        elif dry_run:
            rendered = render_issue(app, digest, articles, now)
            recipients = app.store.count_recipients(digest.id)
            reports.append(
                SendReport(
                    digest_id=digest.id,
                    planned=recipients,
                    note=(
                        f"dry run: would create issue {period.key!r} with {len(articles)} "
                        f"article(s), subject {rendered.subject!r}, for {recipients} subscriber(s)"
                    ),
                )
            )
        else:
            subject = render.subject_for(digest, app.config.site, len(articles), now)
            issue, created = app.store.create_issue(
                digest.id, period.key, subject, [a.id for a in articles if a.id is not None], now
            )
            planned = app.store.plan_deliveries(issue, now) if created else 0
            reports.append(
                SendReport(digest_id=digest.id, issue=issue, created=created, planned=planned)
            )
    if dry_run:
        for issue in app.store.open_issues(digest.id):
            counts = app.store.delivery_counts(issue.id)
            reports.append(
                SendReport(
                    digest_id=digest.id,
                    issue=issue,
                    note=f"dry run: issue {issue.period!r} has {counts['queued']} queued deliveries",
                )
            )
        return reports
    for issue in app.store.open_issues(digest.id):
        delivered = _deliver(app, digest, issue, stop)
        match = next((r for r in reports if r.issue and r.issue.id == issue.id), None)
        if match:
            match.sent, match.failed, match.retrying = (
                delivered.sent,
                delivered.failed,
                delivered.retrying,
            )
        else:
            delivered.note = "resumed"
            reports.append(delivered)
    if not reports:
        reports.append(
            SendReport(digest_id=digest.id, issue=existing, note=f"issue {period.key} already sent")
        )
    return reports


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
