"""Previews and test copies (store reads, one SMTP send for a test copy; no ledger rows)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from publisher.app import App
from publisher.compose import messages, planning, render
from publisher.errors import DeliveryError, PublisherError, SubscriberError, TransportError
from publisher.models import Article, Issue
from publisher.services.composing import (
    message_template,
    next_issue_articles,
    personal_for,
    render_issue,
)

_DARK_QUERY = re.compile(r"@media\s*(?:screen\s+and\s*)?\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)


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


def issue_preview(app: App, issue_id: int) -> Preview:
    """A stored issue rendered as it was sent (its own articles and date)."""
    issue = app.store.get_issue(issue_id)
    if issue is None:
        raise PublisherError(f"no issue #{issue_id} (see `publisher issues list`)")
    digest = app.config.digest(issue.digest_id)
    articles = app.store.articles_by_id(issue.article_ids)
    rendered = render_issue(app, digest, articles, issue.created_at, issue=issue)
    return Preview(label=f"issue {issue.period}", issue=issue, articles=articles, rendered=rendered)


def in_scheme(html: str, scheme: str) -> str:
    """The email's HTML as a reader in ``scheme`` ("light" or "dark") sees it, whatever the
    viewer's own setting: the ``prefers-color-scheme: dark`` rules always apply for dark,
    never for light."""
    return _DARK_QUERY.sub("@media all" if scheme == "dark" else "@media not all", html)


def send_test(app: App, digest_id: str, to: str) -> Preview:
    """Send one ``[TEST]`` copy of the next issue to ``to``; record no delivery."""
    return send_test_copy(app, preview_issue(app, digest_id), to)


def send_test_copy(app: App, preview: Preview, to: str) -> Preview:
    """Send one ``[TEST]`` copy of ``preview`` to ``to``; record no delivery."""
    digest = app.config.digest(preview.issue.digest_id)
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
