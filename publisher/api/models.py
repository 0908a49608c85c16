"""The API's request and response bodies as pydantic models (no I/O).

These classes do two jobs at once: they validate what clients send at run time, and their
JSON schemas are the ``components/schemas`` of the OpenAPI document
(:mod:`publisher.api.openapi`), so the document describes exactly what the code accepts
and returns. Request models refuse unknown fields, so a misspelt field is a 422 rather
than silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Text that can be stored anywhere: no NUL (PostgreSQL refuses it) and no lone surrogates
# (they cannot be encoded), bounded so that one request cannot fill a column.
_SAFE = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(max_length=200, pattern=_SAFE)]
Word = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_SAFE)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=_SAFE)]
Frequency = Literal["every", "daily", "weekly"]
Limit = Annotated[int, Field(ge=1, le=500)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_SAFE)]


class Request(BaseModel):
    """Base of request bodies and queries: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# -- errors --------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine-readable ``code`` and a sentence for people."""

    code: str = Field(examples=["not_found"])
    message: str


class Error(BaseModel):
    """Every error response of the API has this one shape."""

    error: ErrorDetail


# -- subscribers ---------------------------------------------------------------------


class SubscriberQuery(Request):
    """Filters of ``GET /subscribers``; every one given must match."""

    q: Annotated[str, StringConstraints(max_length=200, pattern=_SAFE)] = Field(
        "", description="a case-insensitive part of the address or the name"
    )
    digest: Word | None = Field(None, description="subscribed to this digest")
    status: Literal["active", "pending", "unsubscribed", "bounced", "erased"] | None = Field(
        None, description="erased subscribers are listed only when asked for"
    )
    topic: Word | None = Field(None, description="has chosen this topic")
    cursor: Cursor | None = Field(None, description="`next_cursor` of the previous page")
    limit: Limit = 50


class Subscription(BaseModel):
    """One digest a subscriber gets, how often, and the topics chosen."""

    digest: str
    frequency: str
    topics: list[str]


class Subscriber(BaseModel):
    """A subscriber as listed."""

    id: int
    email: str
    name: str
    status: str
    created_at: datetime
    digests: list[str]


class SubscriberDetail(Subscriber):
    """A subscriber with each subscription's frequency and topics."""

    subscriptions: list[Subscription]


class SubscriberPage(BaseModel):
    """One page of subscribers, newest first; ``next_cursor`` is null on the last page."""

    data: list[Subscriber]
    next_cursor: str | None


class NewSubscriber(Request):
    """``POST /subscribers``. ``pending`` (the default) mails a confirmation link, exactly as
    the sign-up form does; ``confirmed`` subscribes at once (you vouch for consent)."""

    email: Email
    name: Name = ""
    digests: list[Word] = Field(
        default_factory=list, max_length=50, description="default: every digest"
    )
    topics: list[Word] = Field(default_factory=list, max_length=100)
    frequency: Frequency | None = Field(None, description="confirmed only; default every")
    status: Literal["pending", "confirmed"] = "pending"


class SubscriberChange(Request):
    """``PATCH /subscribers/{id}``: only the fields given change. ``digests`` is the whole
    new set (an empty list unsubscribes from everything); ``topics`` and ``frequency``
    apply to every subscription."""

    name: Name | None = None
    digests: list[Word] | None = Field(None, max_length=50)
    frequency: Frequency | None = None
    topics: list[Word] | None = Field(None, max_length=100)


# -- digests, issues, articles -------------------------------------------------------


class IssueQuery(Request):
    """Filters of ``GET /issues``."""

    digest: Word | None = None
    status: Literal["sending", "paused", "sent", "cancelled"] | None = None
    cursor: Cursor | None = None
    limit: Limit = 50


class Counts(BaseModel):
    """Deliveries of an issue by status."""

    queued: int
    sending: int
    sent: int
    failed: int
    bounced: int
    skipped: int


class Issue(BaseModel):
    """An issue of a digest; ``counts`` are its deliveries by status."""

    id: int
    digest: str
    period: str
    subject: str
    status: str
    created_at: datetime
    articles: list[int]
    counts: Counts
    pause_reason: str | None = None  # why it paused itself (auto-pause); null otherwise


class IssuePage(BaseModel):
    """One page of issues, newest first."""

    data: list[Issue]
    next_cursor: str | None


class Digest(BaseModel):
    """A configured digest and its next scheduled send."""

    id: str
    title: str
    schedule: str
    timezone: str
    send_window: str
    next_send_at: datetime | None
    last_issue_id: int | None
    subscribers: int = Field(description="active subscribers a new issue would go to")


class DigestList(BaseModel):
    """Every configured digest, in the order of config.toml."""

    data: list[Digest]


class SendNow(Request):
    """``POST /issues/send-now``: create the digest's due issue and queue it."""

    digest: Word


class Queued(BaseModel):
    """What queueing did for one issue (or why nothing was queued)."""

    issue: Issue | None
    created: bool
    queued: int = Field(description="deliveries queued by this request")
    held: int = Field(description="of the issue's queue, first attempts a send_window holds")
    note: str


class SendNowResult(BaseModel):
    """Queued only: a `publisher worker` or the daemon sends; `serve` never does."""

    data: list[Queued]
    workers_alive: int


class Cancel(Request):
    """``POST /issues/{id}/cancel``."""

    release_articles: bool = Field(
        True, description="a regular issue's articles go into the digest's next issue"
    )


class Empty(Request):
    """An action that takes no fields (an empty body or ``{}``)."""


class IssueAction(BaseModel):
    """The issue after an action, and how many deliveries the action touched."""

    issue: Issue
    affected: int = Field(description="skipped, queued or requeued deliveries")


class Failure(BaseModel):
    """One SMTP reply and how many deliveries ended with it."""

    reply: str
    count: int


class LinkClicks(BaseModel):
    """Clicks on one tracked link, or on one article (the sum of its links)."""

    id: int | None
    title: str
    url: str
    human: int
    automated: int


class HourClicks(BaseModel):
    """Clicks in one hour (UTC, ``YYYY-MM-DD HH:00:00``)."""

    hour: str
    human: int
    automated: int


class Engagement(BaseModel):
    """An issue's engagement: clicks human and automated; opens are unreliable (image
    proxies fetch every pixel), those of known proxies counted apart."""

    tracking: dict[str, bool]
    clicks: dict[str, int]
    opens: dict[str, int]
    opens_unreliable: bool = True
    opens_note: str
    articles: list[LinkClicks]
    links: list[LinkClicks]
    clicks_by_hour: list[HourClicks]
    proxy_snapshot: str


class IssueStats(BaseModel):
    """An issue's delivery statistics and its engagement."""

    issue: Issue
    failures: list[Failure]
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    engagement: Engagement


class DigestStats(BaseModel):
    """A digest's subscribers by status, issues by status and deliveries by status."""

    digest: str
    subscribers: dict[str, int]
    issues: dict[str, int]
    deliveries: Counts


class ArticleQuery(Request):
    """Filters of ``GET /articles``."""

    source: Word | None = None
    tag: Word | None = None
    cursor: Cursor | None = None
    limit: Limit = 50


class Article(BaseModel):
    """A stored article (its sanitised HTML is left out of lists)."""

    id: int
    source: str
    guid: str
    title: str
    url: str
    author: str
    summary: str
    tags: list[str]
    published_at: datetime
    updated_at: datetime


class ArticlePage(BaseModel):
    """One page of articles, the most recently collected first."""

    data: list[Article]
    next_cursor: str | None
