"""The web archive of issues (disk I/O): each issue's "view in browser" page and the index."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from publisher.app import App
from publisher.compose import render
from publisher.config import DigestConfig
from publisher.files import write_atomic
from publisher.models import Issue
from publisher.services.composing import archive_name, render_issue

FEED_LINKS = {
    "rss": ("rss.xml", "application/rss+xml", "RSS"),
    "atom": ("atom.xml", "application/atom+xml", "Atom"),
    "json": ("feed.json", "application/feed+json", "JSON Feed"),
}


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
