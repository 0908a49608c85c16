"""Engagement reports (store reads only): one issue's clicks and opens, human and automated.

:func:`issue_engagement` is what ``publisher stats``, the console's issue page and the API's
issue stats resource show: counts per issue, per article and per link, human and automated
side by side, opens with those fetched by image proxies apart (and labelled unreliable),
and the clicks per hour for the chart. :func:`csv_lines` is the CSV export.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from publisher.app import App
from publisher.errors import PublisherError
from publisher.services.engagement import proxies
from publisher.services.issues import get_issue
from publisher.store.engagement import AUTOMATED, HUMAN, PROXY

OPENS_NOTE = (
    "Opens are unreliable: Apple Mail Privacy Protection and Gmail's image proxy fetch the "
    "pixel whether or not anyone reads the message, and many readers block images. Opens "
    "fetched by known proxies are shown apart; none of these figures is a count of readers."
)


@dataclass(frozen=True)
class LinkFigures:
    """Clicks on one stored link (or one article: the sum of its links)."""

    id: int | None
    title: str
    url: str
    human: int
    automated: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id, "title": self.title, "url": self.url,
            "human": self.human, "automated": self.automated,
        }  # fmt: skip


@dataclass(frozen=True)
class IssueEngagement:
    """An issue's engagement figures."""

    issue_id: int
    digest_id: str
    subject: str
    track_clicks: bool
    track_opens: bool
    individual_tracking: bool
    sent: int
    clicks: dict[str, int]
    opens: dict[str, int]
    articles: list[LinkFigures] = field(default_factory=list)
    links: list[LinkFigures] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    proxy_snapshot: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``publisher stats --json``, the API)."""
        return {
            "issue": self.issue_id,
            "digest": self.digest_id,
            "subject": self.subject,
            "tracking": {
                "clicks": self.track_clicks, "opens": self.track_opens,
                "individual": self.individual_tracking,
            },
            "sent": self.sent,
            "clicks": self.clicks,
            "opens": {**self.opens, "unreliable": True, "note": OPENS_NOTE},
            "articles": [a.as_dict() for a in self.articles],
            "links": [link.as_dict() for link in self.links],
            "clicks_by_hour": self.series,
            "proxy_snapshot": self.proxy_snapshot,
        }  # fmt: skip


def issue_engagement(app: App, issue_id: int) -> IssueEngagement:
    """The engagement figures of issue ``issue_id``; NotFound when there is no such issue."""
    issue = get_issue(app, issue_id)
    try:
        digest = app.config.digest(issue.digest_id)
        flags = (digest.track_clicks, digest.track_opens, digest.individual_tracking)
    except PublisherError:
        flags = (False, False, False)
    counts = app.store.engagement_counts(issue_id)
    clicks = {HUMAN: 0, AUTOMATED: 0}
    opens = {HUMAN: 0, PROXY: 0, AUTOMATED: 0}
    by_link: dict[int | None, Counter[str]] = {}
    for (kind, link_id, verdict), n in counts.items():
        if kind == "click":
            clicks[verdict if verdict in clicks else AUTOMATED] += n
            by_link.setdefault(link_id, Counter())[verdict] += n
        elif kind == "open":
            opens[verdict if verdict in opens else AUTOMATED] += n
        # Canary hits are no clicks: they only turn the hits of their message automated.
    stored = app.store.issue_links(issue_id)
    wanted = sorted({link.article_id for link in stored if link.article_id})
    titles = {a.id: a.title for a in app.store.articles_by_id(wanted)}
    links: list[LinkFigures] = []
    per_article: dict[int | None, tuple[int, int]] = {}
    for link in stored:
        c = by_link.get(link.id, Counter())
        title = titles.get(link.article_id, "") if link.article_id else ""
        links.append(LinkFigures(link.id, title, link.url, c[HUMAN], c[AUTOMATED]))
        key = link.article_id
        human, automated = per_article.get(key, (0, 0))
        per_article[key] = (human + c[HUMAN], automated + c[AUTOMATED])
    articles = [
        LinkFigures(aid, titles.get(aid, "") if aid else "(other links)", "", h, a)
        for aid, (h, a) in per_article.items()
    ]
    articles.sort(key=lambda f: (-f.human, -f.automated, f.title))
    links.sort(key=lambda f: (-f.human, -f.automated, f.id or 0))
    series_counts = app.store.click_series(issue_id)
    hours = sorted({hour for hour, _ in series_counts})
    series = [
        {"hour": hour, HUMAN: series_counts[(hour, HUMAN)], AUTOMATED: series_counts[(hour, AUTOMATED)]}
        for hour in hours
    ]
    sent = app.store.delivery_counts(issue_id).get("sent", 0)
    return IssueEngagement(
        issue.id or issue_id, issue.digest_id, issue.subject, *flags, sent=sent,
        clicks=clicks, opens=opens, articles=articles, links=links, series=series,
        proxy_snapshot=proxies().snapshot_date,
    )  # fmt: skip


def click_chart(report: IssueEngagement) -> dict[str, Any]:
    """The clicks-per-hour series as the console's charts read them (``x``: epoch seconds)."""
    from datetime import UTC, datetime

    x = [
        int(datetime.strptime(row["hour"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())
        for row in report.series
    ]
    return {
        "x": x,
        "series": {
            "human": [row[HUMAN] for row in report.series],
            "automated": [row[AUTOMATED] for row in report.series],
        },
        "note": "Clicks per hour (UTC). Automated: scanners, prefetchers, canary followers.",
    }


def csv_lines(report: IssueEngagement) -> Iterator[str]:
    """The CSV export: one row per article and per link, then the issue's totals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(*values: Any) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line("issue", "scope", "id", "title", "url", "human", "automated", "proxy")
    for article in report.articles:
        yield line(report.issue_id, "article", article.id or "", article.title, "",
                   article.human, article.automated, "")  # fmt: skip
    for link in report.links:
        yield line(report.issue_id, "link", link.id, link.title, link.url,
                   link.human, link.automated, "")  # fmt: skip
    yield line(report.issue_id, "clicks", "", "", "", report.clicks[HUMAN], report.clicks[AUTOMATED], "")
    yield line(report.issue_id, "opens (unreliable)", "", "", "", report.opens[HUMAN],
               report.opens[AUTOMATED], report.opens[PROXY])  # fmt: skip
