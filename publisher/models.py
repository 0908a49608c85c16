"""Plain data passed between the modules (no I/O): articles, subscribers, issues, deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Citation:
    """A reference an article cites: the citation text and, usually, a link."""

    text: str
    url: str = ""


@dataclass(frozen=True)
class Article:
    """One article, as collected (``id``/``feed_id`` empty) or as stored.

    Identity is ``(source, guid)``. ``content_hash`` tells an edit from a re-collect.
    ``feed_id`` is fixed by the store when the article is first seen and never changes.
    """

    source: str
    guid: str
    title: str
    url: str
    published_at: datetime
    updated_at: datetime
    content_html: str
    summary: str = ""
    author: str = ""
    tags: tuple[str, ...] = ()
    image: str | None = None
    canonical_url: str | None = None
    citations: tuple[Citation, ...] = ()
    content_hash: str = ""
    id: int | None = None
    feed_id: str = ""


@dataclass(frozen=True)
class Subscriber:
    """A person on the list. ``status``: active, pending, unsubscribed, bounced or erased."""

    id: int
    email: str
    name: str
    status: str
    created_at: datetime
    digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Issue:
    """One edition of a digest, unique per ``(digest_id, period)``."""

    id: int
    digest_id: str
    period: str
    subject: str
    created_at: datetime
    article_ids: tuple[int, ...] = ()
    status: str = "sending"


@dataclass(frozen=True)
class Recipient:
    """A claimed delivery: who gets which issue, and the ledger row that tracks it."""

    delivery_id: int
    issue_id: int
    subscriber_id: int
    email: str
    name: str
    digest_id: str
    attempts: int
    recovered: bool = False  # taken over from an expired lease: the message may already be out


@dataclass(frozen=True)
class SendOutcome:
    """What the transport said about one message."""

    delivery_id: int
    ok: bool
    reply: str = ""
    permanent: bool = False
    code: int | None = None
    bounce: bool = False  # a 5.1.x "no such user": the subscriber is marked bounced


@dataclass
class CollectReport:
    """Counts and errors of one collect run, for the summary line."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class SendReport:
    """What one ``send`` of a digest did."""

    digest_id: str
    issue: Issue | None = None
    created: bool = False
    planned: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    note: str = ""
    bounced: int = 0
    recovered: int = 0  # taken over from a crashed sender's expired lease: possible duplicates
    released: int = 0  # claimed, then put back unsent by a graceful stop
