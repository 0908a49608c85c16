"""An issue's content (store reads): its articles, its rendering, its message and links.

Rendering and inlining happen once per issue here (:mod:`publisher.compose.render`); per
recipient only the placeholders are filled (:mod:`publisher.compose.messages`).
"""

from __future__ import annotations

from datetime import datetime

from publisher.app import App
from publisher.compose import messages, planning, render, tracking
from publisher.compose.links import make_token
from publisher.config import DigestConfig
from publisher.models import Article, Issue
from publisher.services import engagement
from publisher.syndicate.writer import slugify

SIMILAR_POOL = 500


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
    track: bool = False,
) -> render.RenderedIssue:
    """Render an issue of ``digest`` holding ``articles`` as of ``at``.

    With ``issue``, the email links to the issue's archive page; ``archive`` renders that
    page itself (no personal data, no placeholders). ``track`` (for the messages sent)
    stores the article links of a digest with ``track_clicks`` and renders them as
    placeholders of tracked links (see :mod:`publisher.services.engagement`).
    """
    pool = app.store.recent_articles(SIMILAR_POOL)
    similar = {a.id: render.similar_articles(a, pool) for a in articles if a.id is not None}
    base = app.config.web.base_url.rstrip("/")
    tracked = render.IssueLinks()
    if track and issue is not None and not archive:
        tracked = engagement.issue_links(app, digest, issue.id, articles, similar)
    links = render.IssueLinks(
        view_url=archive_url(app, issue) if issue else "",
        more_url=f"{base}/archive/",
        subscribe_url=f"{base}/subscribe",
        tracked=tracked.tracked,
        pixel=tracked.pixel,
    )
    return render.render_issue(
        app.templates, app.config.site, digest, articles, at, similar=similar, links=links, archive=archive
    )


def next_issue_articles(app: App, digest: DigestConfig) -> list[Article]:
    """The articles the next issue of ``digest`` would hold (nothing is written)."""
    return planning.select_articles(digest, app.store.unissued_articles(digest.id))


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


def message_template(
    app: App,
    digest: DigestConfig,
    rendered: render.RenderedIssue,
    issue_id: int,
    at: datetime,
    *,
    test: bool = False,
    track: bool = False,
) -> messages.MessageTemplate:
    """The recipient-independent message of an issue, with the configured sender.

    With ``track``, each recipient's tracked links, canary and pixel are filled in too.
    """
    config = app.config
    link_ids = tracking.placeholder_links(rendered.html + rendered.text)
    per_message = engagement.per_message(app, digest, issue_id, link_ids) if track else None
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
        tracking=per_message,
    )
