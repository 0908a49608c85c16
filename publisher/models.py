"""Plain data passed between the modules (no I/O): articles, subscribers, issues, deliveries,
operators, API tokens and the audit log."""

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
    """One edition of a digest, unique per ``(digest_id, period)``.

    ``status``: sending (deliveries left), paused (by an operator: queued, sent by
    nobody), sent (nothing left) or cancelled.
    """

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
    # Every source that failed this run, even one whose (repeated) error is not in
    # ``errors``: a command that collects exits 1 when this or ``errors`` is not empty.
    failed_sources: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every source was read and no file was skipped."""
        return not self.errors and not self.failed_sources


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
    recovered: int = 0  # taken over from a sender that is gone: possible duplicates
    released: int = 0  # claimed, then put back unsent by a graceful stop
    # First attempts not due yet because of the digest's send_window (quiet hours).
    held: int = 0
    held_until: datetime | None = None
    queued_only: bool = False  # planned with --queue-only: `publisher worker` sends
    lost: int = 0  # sent or claimed, but the claim was taken over first: not recorded by us
    held_by: list[Held] = field(default_factory=list)  # claims other workers still hold


@dataclass(frozen=True)
class Held:
    """Deliveries of an issue that another worker holds and may still be sending."""

    count: int
    holder: str  # host:pid
    state: str  # "alive", or "unknown" (another host on SQLite: its lease decides)
    lease_until: datetime | None
    worker_id: int | None

    def describe(self, now: datetime) -> str:
        """``12 held by web1:4242 (alive; ...)``, for command output."""
        if self.state == "alive":
            back = "alive; they come back when it finishes, stops or dies"
        elif self.lease_until is not None:
            seconds = max(0, int((self.lease_until - now).total_seconds()))
            back = (
                f"liveness unknown on another host; unless it heartbeats, its lease ends "
                f"at {self.lease_until:%H:%M:%S} UTC (in {seconds}s)"
            )
        else:
            back = "liveness unknown"
        return f"{self.count} held by {self.holder} ({back})"


# -- operators, API tokens, audit --------------------------------------------------------

# Each role can do everything the roles before it can (viewer < editor < admin), and so can
# each token scope (read < write < send): one comparison of positions answers "may they?".
ROLES = ("viewer", "editor", "admin")
SCOPES = ("read", "write", "send")


def role_allows(role: str, needed: str) -> bool:
    """Whether an operator with ``role`` may do what needs ``needed`` (an unknown role: no)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def scope_allows(scope: str, needed: str) -> bool:
    """Whether a token with ``scope`` may do what needs ``needed`` (an unknown scope: no)."""
    return scope in SCOPES and SCOPES.index(scope) >= SCOPES.index(needed)


@dataclass(frozen=True)
class Operator:
    """A person who may log in to the console. The secrets stay out of ``repr`` (and logs)."""

    email: str
    role: str
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)
    # JSON list of hashes of the unused recovery codes (written by the console's enrolment).
    recovery_codes: str | None = field(repr=False)
    created_at: datetime
    last_login_at: datetime | None
    # The last TOTP time step accepted: a code (and any older one) cannot log in again.
    totp_last_step: int | None = field(default=None, repr=False)

    @property
    def two_factor(self) -> bool:
        """Whether the operator has enrolled a TOTP second factor."""
        return self.totp_secret is not None


@dataclass(frozen=True)
class ApiToken:
    """An API token as stored: never its secret, only the public prefix that names it."""

    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class AuditEntry:
    """One operator action: who (``cli:alice``, an operator's email, ``token:ci``), what,
    on what, when and from which address (None from the command line)."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: str = ""
    ip: str | None = None
    id: int | None = None
