"""``/api/v1/digests`` and ``/api/v1/articles``, and each digest's statistics (store reads).

Digests come from config.toml, with their next scheduled send computed from the schedule
as of the app's clock; articles are the stored ones, newest collected first.
"""

from __future__ import annotations

from publisher.api import models
from publisher.api.framework import ApiError, Call, Operation, Reply, next_link
from publisher.errors import ConfigError
from publisher.services import digests, listings


def list_digests(call: Call) -> Reply:
    """Every digest with its next send and last issue."""
    data = [
        models.Digest(
            id=d.id,
            title=d.title,
            schedule=d.schedule,
            timezone=d.timezone,
            send_window=d.send_window,
            next_send_at=d.next_send_at,
            last_issue_id=None if d.last_issue is None else d.last_issue.id,
            subscribers=d.subscribers,
        )
        for d in digests.digest_summaries(call.app)
    ]
    return Reply(models.DigestList(data=data))


def digest_stats(call: Call) -> Reply:
    """A digest's subscribers, issues and deliveries by status."""
    digest_id: str = call.path["digest_id"]
    try:
        totals = digests.digest_stats(call.app, digest_id)
    except ConfigError as exc:
        raise ApiError(404, "not_found", exc.message) from None
    return Reply(
        models.DigestStats(
            digest=digest_id,
            subscribers=totals["subscribers"],
            issues=totals["issues"],
            deliveries=models.Counts(**totals["deliveries"]),
        )
    )


def list_articles(call: Call) -> Reply:
    """A page of stored articles."""
    q: models.ArticleQuery = call.query
    page = listings.list_articles(
        call.app, source=q.source, tag=q.tag, after=q.cursor, limit=q.limit
    )
    data = [
        models.Article(
            id=a.id or 0,
            source=a.source,
            guid=a.guid,
            title=a.title,
            url=a.url,
            author=a.author,
            summary=a.summary,
            tags=list(a.tags),
            published_at=a.published_at,
            updated_at=a.updated_at,
        )
        for a in page.items
    ]
    body = models.ArticlePage(data=data, next_cursor=page.next_cursor)
    return Reply(body, headers=next_link(call.url, page.next_cursor))


OPERATIONS = [
    Operation(
        "GET", "/digests", "listDigests", "List digests with their next send", "digests", "read",
        list_digests, {200: models.DigestList},
    ),
    Operation(
        "GET", "/digests/{digest_id}/stats", "digestStats", "A digest's statistics", "stats",
        "read", digest_stats, {200: models.DigestStats}, errors=(404,),
    ),
    Operation(
        "GET", "/articles", "listArticles", "List stored articles", "articles", "read",
        list_articles, {200: models.ArticlePage}, query=models.ArticleQuery, paged=True,
    ),
]  # fmt: skip
