"""The store (database I/O): SQLAlchemy Core queries over SQLite or PostgreSQL.

The same code serves both. SQLite runs in WAL mode with ``synchronous=NORMAL`` and takes
the write lock at the start of each transaction (``BEGIN IMMEDIATE``), so the claim of a
delivery batch is atomic; PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so that many
workers can share one issue. Uniqueness that matters is enforced by the database: one
article per ``(source, guid)``, one issue per ``(digest, period)``, one delivery per
``(issue, subscriber)``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from publisher.errors import StoreError, SubscriberError
from publisher.models import Article, Citation, Issue, Subscriber
from publisher.store import location
from publisher.store.claims import ClaimsMixin
from publisher.store.limits import LimitsMixin
from publisher.store.planning import PlanningMixin
from publisher.store.roster import SubscriberAdmin
from publisher.store.schema import (
    articles,
    bounce_events,
    deliveries,
    issue_articles,
    issues,
    settings,
    signups,
    source_state,
    subscribers,
    subscriptions,
    suppressions,
)
from publisher.store.suppressions import SuppressionsMixin
from publisher.store.workers import WorkersMixin

MIGRATIONS = Path(__file__).parent / "migrations"
ACTIVE = "active"
FEEDS_STATE = "feeds_state"


class FeedIndexRow(NamedTuple):
    """An article's columns that decide which feeds hold it and whether they changed."""

    id: int
    published_at: datetime
    updated_at: datetime
    content_hash: str
    tags: tuple[str, ...]
    author: str

DELIVERY_STATES = ("queued", "sending", "sent", "failed", "bounced", "skipped")
BOUNCED = "bounced"
THROTTLE_KEY = "delivery:throttle"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would defer BEGIN; take it over so that
    # BEGIN IMMEDIATE below is what starts every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; explain how to enable a missing driver."""
    try:
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"store url {url.split('@')[-1]!r}: database driver {exc.name!r} is not installed",
            hint="install publisher[postgres] for PostgreSQL",
        ) from exc
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for bad URLs
        raise StoreError(f"store url {url!r} is not usable: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _json_list(value: str | None) -> list[Any]:
    return json.loads(value) if value else []


def _article(row: Any) -> Article:
    return Article(
        id=row.id,
        source=row.source,
        guid=row.guid,
        feed_id=row.feed_id,
        title=row.title,
        url=row.url,
        author=row.author,
        summary=row.summary,
        content_html=row.content_html,
        tags=tuple(_json_list(row.tags)),
        image=row.image,
        canonical_url=row.canonical_url,
        citations=tuple(Citation(**c) for c in _json_list(row.citations)),
        content_hash=row.content_hash,
        published_at=row.published_at,
        updated_at=row.updated_at,
    )


def _issue(row: Any, article_ids: Sequence[int] = ()) -> Issue:
    return Issue(
        id=row.id,
        digest_id=row.digest_id,
        period=row.period,
        subject=row.subject,
        created_at=row.created_at,
        status=row.status,
        article_ids=tuple(article_ids),
    )


def _subscribe(
    conn: Connection, subscriber_id: int, digest_id: str, now: datetime, tags: Sequence[str] = ()
) -> None:
    """Add one subscription (every issue) for a subscriber who does not have it yet."""
    conn.execute(
        insert(subscriptions).values(
            subscriber_id=subscriber_id,
            digest_id=digest_id,
            frequency="every",
            tags=json.dumps(list(tags)),
            created_at=now,
        )
    )


def feed_id_for(article: Article, site_host: str, first_seen: datetime) -> str:
    """The permanent feed id: the canonical URL, else a ``tag:`` URI (RFC 4151)."""
    if article.canonical_url:
        return article.canonical_url
    return f"tag:{site_host},{first_seen:%Y-%m-%d}:{article.source}/{article.guid}"


class Store(ClaimsMixin, WorkersMixin, LimitsMixin, PlanningMixin, SubscriberAdmin,
            SuppressionsMixin):  # fmt: skip
    """All database access. Create with :meth:`open`; every method is one transaction.

    Claims and results live in :mod:`publisher.store.claims`, the registry of sending
    processes in :mod:`publisher.store.workers`, subscriber administration (batched
    import) in :mod:`publisher.store.roster`, the suppression list in
    :mod:`publisher.store.suppressions`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, create: bool = True) -> Store:
        """Connect to ``url`` and, unless told not to, apply pending migrations.

        With ``create=False`` (the read-only commands) a missing SQLite file is a
        StoreError naming the path, and nothing is created (see :mod:`.location`).
        """
        location.prepare(url, create=create)
        store = cls(make_engine(url))
        if migrate:
            store.upgrade()
        return store

    def upgrade(self) -> list[str]:
        """Apply pending Alembic migrations; return the revisions applied."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        try:
            with self.engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                cfg = _alembic_config(conn)
                script = ScriptDirectory.from_config(cfg)
                head = script.get_current_head()
                if current == head:
                    return []
                pending = [rev.revision for rev in script.iterate_revisions(head, current)]
                command.upgrade(cfg, "head")
                return list(reversed(pending))
        except OperationalError as exc:
            raise StoreError(f"cannot open the store: {exc.orig}") from exc

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # -- settings --------------------------------------------------------------------

    def setting(self, key: str, default_factory: Any = None) -> str | None:
        """Read a setting; create it with ``default_factory()`` when it is missing."""
        with self.engine.begin() as conn:
            value = conn.scalar(select(settings.c.value).where(settings.c.key == key))
            if value is None and default_factory is not None:
                value = default_factory()
                conn.execute(insert(settings).values(key=key, value=value))
            return value

    def signing_secret(self) -> str:
        """The secret generated for this store when no ``[web] secret_env`` is set."""
        value = self.setting("signing_secret", lambda: secrets.token_urlsafe(32))
        assert value is not None
        return value

    # -- articles --------------------------------------------------------------------

    def upsert_article(self, article: Article, now: datetime, site_host: str) -> str:
        """Insert or update one article; return ``new``, ``updated`` or ``unchanged``."""
        key = and_(articles.c.source == article.source, articles.c.guid == article.guid)
        values = {
            "title": article.title,
            "url": article.url,
            "author": article.author,
            "summary": article.summary,
            "content_html": article.content_html,
            "tags": json.dumps(list(article.tags)),
            "image": article.image,
            "canonical_url": article.canonical_url,
            "citations": json.dumps([c.__dict__ for c in article.citations]),
            "content_hash": article.content_hash,
            "published_at": article.published_at,
        }
        with self.engine.begin() as conn:
            row = conn.execute(
                select(articles.c.id, articles.c.content_hash, articles.c.updated_at).where(key)
            ).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(articles).values(
                                source=article.source,
                                guid=article.guid,
                                feed_id=feed_id_for(article, site_host, now),
                                updated_at=article.updated_at,
                                first_seen_at=now,
                                **values,
                            )
                        )
                    return "new"
                except IntegrityError:
                    # Another process (a second daemon on the same PostgreSQL) stored it
                    # between our look and our insert: theirs stands, compare with it.
                    row = conn.execute(
                        select(articles.c.id, articles.c.content_hash, articles.c.updated_at)
                        .where(key)
                    ).one()
            if row.content_hash == article.content_hash:
                return "unchanged"
            # An edit without an explicit `updated` date is dated by when we saw it.
            updated_at = article.updated_at if article.updated_at > row.updated_at else now
            conn.execute(
                update(articles)
                .where(articles.c.id == row.id)
                .values(updated_at=updated_at, **values)
            )
            return "updated"

    def recent_articles(self, limit: int) -> list[Article]:
        """The newest ``limit`` articles, newest first."""
        query = select(articles).order_by(articles.c.published_at.desc(), articles.c.id.desc())
        with self.engine.connect() as conn:
            return [_article(r) for r in conn.execute(query.limit(limit))]

    def articles_by_id(self, ids: Sequence[int]) -> list[Article]:
        """Articles with these ids, in the order given."""
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = {
                r.id: _article(r)
                for r in conn.execute(select(articles).where(articles.c.id.in_(ids)))
            }
        return [rows[i] for i in ids if i in rows]

    def unissued_articles(self, digest_id: str) -> list[Article]:
        """Articles that no issue of ``digest_id`` holds yet, newest first."""
        issued = (
            select(issue_articles.c.article_id)
            .join(issues, issues.c.id == issue_articles.c.issue_id)
            # A cancelled issue whose articles were released no longer holds them.
            .where(issues.c.digest_id == digest_id, issues.c.released_at.is_(None))
        )
        query = (
            select(articles)
            .where(articles.c.id.not_in(issued))
            .order_by(articles.c.published_at.desc(), articles.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [_article(r) for r in conn.execute(query)]

    def all_tags(self) -> list[str]:
        """Every tag used by a stored article, sorted."""
        tags: set[str] = set()
        with self.engine.connect() as conn:
            for value in conn.scalars(select(articles.c.tags)):
                tags.update(_json_list(value))
        return sorted(tags)

    def articles_with_tag(self, tag: str, limit: int) -> list[Article]:
        """The newest ``limit`` articles carrying ``tag``, newest first."""
        needle = json.dumps(tag)
        query = (
            select(articles)
            .where(articles.c.tags.contains(needle, autoescape=True))
            .order_by(articles.c.published_at.desc(), articles.c.id.desc())
        )
        out: list[Article] = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                article = _article(row)
                if tag in article.tags:
                    out.append(article)
                    if len(out) >= limit:
                        break
        return out

    def count_articles(self) -> int:
        """How many articles are stored."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(articles)) or 0)

    def feed_index(self) -> list[FeedIndexRow]:
        """Every article's feed-relevant key columns (no bodies), newest first.

        The feed writer plans every feed from this one cheap query and loads full
        articles only for the feeds whose inputs changed.
        """
        query = select(
            articles.c.id,
            articles.c.published_at,
            articles.c.updated_at,
            articles.c.content_hash,
            articles.c.tags,
            articles.c.author,
        ).order_by(articles.c.published_at.desc(), articles.c.id.desc())
        tag_lists: dict[str, tuple[str, ...]] = {}  # the same tag lists recur: parse once
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            tags = tag_lists.get(r.tags)
            if tags is None:
                tags = tag_lists[r.tags] = tuple(_json_list(r.tags))
            out.append(
                FeedIndexRow(r.id, r.published_at, r.updated_at, r.content_hash, tags, r.author)
            )
        return out

    def feeds_state(self) -> dict[str, Any]:
        """What the feed writer remembered from its last build (``{}`` at first)."""
        with self.engine.connect() as conn:
            value = conn.scalar(select(settings.c.value).where(settings.c.key == FEEDS_STATE))
        return json.loads(value) if value else {}

    def save_feeds_state(self, state: dict[str, Any]) -> None:
        """Replace the feed writer's remembered state."""
        value = json.dumps(state, sort_keys=True)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(settings).where(settings.c.key == FEEDS_STATE).values(value=value)
            ).rowcount
            if not done:
                conn.execute(insert(settings).values(key=FEEDS_STATE, value=value))

    def record_source_run(
        self,
        source: str,
        now: datetime,
        error: str | None,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> int:
        """Remember a source's last success or failure and its validators.

        Returns the number of consecutive failed runs (0 after a success).
        """
        failures = 0
        with self.engine.begin() as conn:
            row = conn.execute(select(source_state).where(source_state.c.source == source)).first()
            if error is None:
                values: dict[str, Any] = {
                    "last_success_at": now,
                    "last_error": None,
                    "consecutive_failures": 0,
                    "etag": etag,
                    "last_modified": last_modified,
                }
            else:
                failures = (row.consecutive_failures if row else 0) + 1
                values = {"last_error": error, "consecutive_failures": failures}
            if row is None:
                conn.execute(insert(source_state).values(source=source, updated_at=now, **values))
            else:
                conn.execute(
                    update(source_state)
                    .where(source_state.c.source == source)
                    .values(updated_at=now, **values)
                )
        return failures

    def source_states(self) -> list[dict[str, Any]]:
        """Every source's health row."""
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(select(source_state).order_by(source_state.c.source))
            ]

    # -- subscribers -----------------------------------------------------------------

    def add_subscriber(
        self,
        email: str,
        name: str,
        digests: Iterable[str],
        now: datetime,
        *,
        status: str = ACTIVE,
        reactivate: bool = True,
        tags: Sequence[str] = (),
    ) -> tuple[Subscriber, bool]:
        """Add a subscriber with subscriptions; return it and whether it is new.

        An existing address keeps its row. With ``reactivate`` (an operator's explicit add)
        it becomes active again and gains the digests; without it (an import), it is left
        exactly as it is, so a bulk import never re-subscribes someone who left.
        """
        digests = list(dict.fromkeys(digests))
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
            created = row is None
            if created:
                sub_id = conn.execute(
                    insert(subscribers).values(
                        email=email, name=name, status=status, created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]
            else:
                sub_id = row.id
                if not reactivate:
                    return self._subscriber(conn, sub_id), False
                changes: dict[str, Any] = {"status": status, "updated_at": now}
                if name:
                    changes["name"] = name
                conn.execute(
                    update(subscribers).where(subscribers.c.id == sub_id).values(**changes)
                )
            have = set(
                conn.scalars(
                    select(subscriptions.c.digest_id).where(subscriptions.c.subscriber_id == sub_id)
                )
            )
            for digest_id in digests:
                if digest_id not in have:
                    _subscribe(conn, sub_id, digest_id, now, tags)
            return self._subscriber(conn, sub_id), created

    def _subscriber(self, conn: Connection, sub_id: int) -> Subscriber:
        row = conn.execute(select(subscribers).where(subscribers.c.id == sub_id)).one()
        digests = conn.scalars(
            select(subscriptions.c.digest_id)
            .where(subscriptions.c.subscriber_id == sub_id)
            .order_by(subscriptions.c.digest_id)
        )
        return Subscriber(
            id=row.id,
            email=row.email,
            name=row.name,
            status=row.status,
            created_at=row.created_at,
            digests=tuple(digests),
        )

    def list_subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """Every subscriber (optionally of one status), oldest first."""
        query = select(subscribers.c.id).order_by(subscribers.c.id)
        if status:
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            ids = list(conn.scalars(query))
            for sub_id in ids:
                yield self._subscriber(conn, sub_id)

    def count_recipients(self, digest_id: str) -> int:
        """How many active subscribers a new issue of ``digest_id`` would go to."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(
                        subscriptions.join(
                            subscribers, subscribers.c.id == subscriptions.c.subscriber_id
                        )
                    )
                    .where(subscriptions.c.digest_id == digest_id, subscribers.c.status == ACTIVE)
                )
                or 0
            )

    def record_bounce(
        self,
        email: str,
        kind: str,
        status: str,
        diagnostic: str,
        report_id: str,
        occurred_at: datetime,
        now: datetime,
        *,
        soft_limit: int,
        soft_window: timedelta,
    ) -> str:
        """Record one bounce; return ``duplicate``, ``unknown``, ``counted`` or ``bounced``.

        A hard bounce, or the ``soft_limit``-th soft bounce within ``soft_window`` before
        ``now``, marks the subscriber ``bounced``: they get no more mail.
        """
        with self.engine.begin() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            seen = conn.scalar(
                select(func.count())
                .select_from(bounce_events)
                .where(bounce_events.c.report_id == report_id, bounce_events.c.email == email)
            )
            if seen:
                return "duplicate"
            conn.execute(
                insert(bounce_events).values(
                    subscriber_id=sub_id,
                    email=email,
                    kind=kind,
                    status=status,
                    diagnostic=diagnostic,
                    report_id=report_id[:500],
                    occurred_at=occurred_at,
                )
            )
            if sub_id is None:
                return "unknown"
            if kind == "soft":
                recent = conn.scalar(
                    select(func.count())
                    .select_from(bounce_events)
                    .where(
                        bounce_events.c.email == email,
                        bounce_events.c.kind == "soft",
                        bounce_events.c.occurred_at >= now - soft_window,
                    )
                )
                if (recent or 0) < soft_limit:
                    return "counted"
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == sub_id, subscribers.c.status != "bounced")
                .values(status="bounced", updated_at=now)
            )
            return "bounced"

    def find_subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with this address, if any."""
        with self.engine.connect() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            return None if sub_id is None else self._subscriber(conn, sub_id)

    def set_subscriber_status(self, email: str, status: str, now: datetime) -> Subscriber:
        """Change a subscriber's status (``remove`` sets ``unsubscribed``)."""
        with self.engine.begin() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            if sub_id is None:
                raise SubscriberError(f"no subscriber with address {email!r}")
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == sub_id)
                .values(status=status, updated_at=now)
            )
            return self._subscriber(conn, sub_id)

    # -- the subscribers' web side: sign-up, unsubscribe, preferences, erasure -------

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, if any."""
        with self.engine.connect() as conn:
            found = conn.scalar(select(subscribers.c.id).where(subscribers.c.id == subscriber_id))
            return None if found is None else self._subscriber(conn, found)

    def request_signup(
        self,
        email: str,
        name: str,
        digests: Sequence[str],
        tags: Sequence[str],
        nonce: str,
        now: datetime,
    ) -> Subscriber:
        """Record a sign-up request waiting for confirmation; return the subscriber.

        A new address becomes a ``pending`` subscriber; a known one keeps its status and
        its data until the request is confirmed (a stranger cannot change them). The
        request replaces any earlier one, so only the newest confirmation link works.
        """
        with self.engine.begin() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            if sub_id is None:
                sub_id = conn.execute(
                    insert(subscribers).values(
                        email=email, name=name, status="pending", created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]
            conn.execute(signups.delete().where(signups.c.subscriber_id == sub_id))
            conn.execute(
                insert(signups).values(
                    subscriber_id=sub_id,
                    nonce=nonce,
                    name=name,
                    digests=json.dumps(list(dict.fromkeys(digests))),
                    tags=json.dumps(list(dict.fromkeys(tags))),
                    requested_at=now,
                )
            )
            return self._subscriber(conn, sub_id)

    def pending_signup(self, subscriber_id: int) -> dict[str, Any] | None:
        """The open sign-up request of a subscriber: nonce, name, digests, tags."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(signups).where(signups.c.subscriber_id == subscriber_id)
            ).first()
        if row is None:
            return None
        return {
            "nonce": row.nonce,
            "name": row.name,
            "digests": _json_list(row.digests),
            "tags": _json_list(row.tags),
            "requested_at": row.requested_at,
        }

    def confirm_signup(
        self, subscriber_id: int, nonce: str, email_hash: str, now: datetime
    ) -> Subscriber | None:
        """Apply the sign-up request carrying ``nonce``: the subscriber becomes active with
        the digests and tags asked for. None when there is no such request (already
        confirmed, or superseded by a newer one). The address leaves the suppression list.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(signups).where(
                    signups.c.subscriber_id == subscriber_id, signups.c.nonce == nonce
                )
            ).first()
            if row is None:
                return None
            tags = _json_list(row.tags)
            values: dict[str, Any] = {"status": ACTIVE, "updated_at": now}
            if row.name:
                values["name"] = row.name
            conn.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(**values)
            )
            have = set(
                conn.scalars(
                    select(subscriptions.c.digest_id).where(
                        subscriptions.c.subscriber_id == subscriber_id
                    )
                )
            )
            for digest_id in _json_list(row.digests):
                if digest_id in have:
                    conn.execute(
                        update(subscriptions)
                        .where(
                            subscriptions.c.subscriber_id == subscriber_id,
                            subscriptions.c.digest_id == digest_id,
                        )
                        .values(tags=json.dumps(tags))
                    )
                else:
                    conn.execute(
                        insert(subscriptions).values(
                            subscriber_id=subscriber_id,
                            digest_id=digest_id,
                            frequency="every",
                            tags=json.dumps(tags),
                            created_at=now,
                        )
                    )
            conn.execute(signups.delete().where(signups.c.subscriber_id == subscriber_id))
            conn.execute(suppressions.delete().where(suppressions.c.email_hash == email_hash))
            return self._subscriber(conn, subscriber_id)

    def _skip_queued(
        self, conn: Connection, subscriber_id: int, digest_ids: Sequence[str] | None, now: datetime
    ) -> None:
        """Queued deliveries to a subscriber (of these digests, or all) become skipped."""
        where = [deliveries.c.subscriber_id == subscriber_id, deliveries.c.status == "queued"]
        if digest_ids is not None:
            where.append(
                deliveries.c.issue_id.in_(
                    select(issues.c.id).where(issues.c.digest_id.in_(list(digest_ids)))
                )
            )
        conn.execute(
            update(deliveries)
            .where(*where)
            .values(status="skipped", last_reply="subscriber unsubscribed", updated_at=now)
        )

    def unsubscribe(
        self, subscriber_id: int, digest_id: str | None, now: datetime
    ) -> Subscriber | None:
        """Unsubscribe from one digest, or (``digest_id`` None) from everything; idempotent.

        Queued deliveries that the change rules out are skipped in the same transaction.
        Leaving the last digest is leaving everything. None for an unknown subscriber.
        """
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return None
            leave_all = digest_id is None
            if digest_id is not None:
                conn.execute(
                    subscriptions.delete().where(
                        subscriptions.c.subscriber_id == subscriber_id,
                        subscriptions.c.digest_id == digest_id,
                    )
                )
                self._skip_queued(conn, subscriber_id, [digest_id], now)
                left = conn.scalar(
                    select(func.count())
                    .select_from(subscriptions)
                    .where(subscriptions.c.subscriber_id == subscriber_id)
                )
                leave_all = not left
            if leave_all:
                if row.status in (ACTIVE, "pending"):
                    conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == subscriber_id)
                        .values(status="unsubscribed", updated_at=now)
                    )
                conn.execute(signups.delete().where(signups.c.subscriber_id == subscriber_id))
                self._skip_queued(conn, subscriber_id, None, now)
            return self._subscriber(conn, subscriber_id)

    def subscription_rows(self, subscriber_id: int) -> list[dict[str, Any]]:
        """A subscriber's subscriptions: ``digest_id``, ``frequency``, ``tags``, ``created_at``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriptions)
                .where(subscriptions.c.subscriber_id == subscriber_id)
                .order_by(subscriptions.c.digest_id)
            )
            return [
                {
                    "digest_id": r.digest_id,
                    "frequency": r.frequency,
                    "tags": _json_list(r.tags),
                    "created_at": r.created_at,
                }
                for r in rows
            ]

    def update_preferences(
        self,
        subscriber_id: int,
        name: str,
        digests: Sequence[str] | None,
        tags: Sequence[str],
        now: datetime,
    ) -> Subscriber | None:
        """Set a subscriber's name, tags and (``digests`` not None) digests.

        Digests left are unsubscribed (their queued deliveries skipped); choosing none is
        unsubscribing from everything. None for an unknown or erased subscriber.
        """
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None or row.status == "erased":
                return None
            values: dict[str, Any] = {"name": name, "updated_at": now}
            mine = subscriptions.c.subscriber_id == subscriber_id
            have = set(conn.scalars(select(subscriptions.c.digest_id).where(mine)))
            if digests is not None:
                wanted = list(dict.fromkeys(digests))
                gone = sorted(have - set(wanted))
                if gone:
                    conn.execute(subscriptions.delete().where(mine, subscriptions.c.digest_id.in_(gone)))
                    self._skip_queued(conn, subscriber_id, gone, now)
                for digest_id in wanted:
                    if digest_id not in have:
                        _subscribe(conn, subscriber_id, digest_id, now)
                if not wanted and row.status in (ACTIVE, "pending"):
                    values["status"] = "unsubscribed"
                    self._skip_queued(conn, subscriber_id, None, now)
            conn.execute(update(subscriptions).where(mine).values(tags=json.dumps(list(tags))))
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))
            return self._subscriber(conn, subscriber_id)

    def subscriber_history(self, subscriber_id: int) -> list[dict[str, Any]]:
        """Every delivery to a subscriber: digest, period, subject, status, sent_at."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    issues.c.digest_id,
                    issues.c.period,
                    issues.c.subject,
                    deliveries.c.status,
                    deliveries.c.sent_at,
                )
                .join(issues, issues.c.id == deliveries.c.issue_id)
                .where(deliveries.c.subscriber_id == subscriber_id)
                .order_by(deliveries.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def erase_subscriber(self, subscriber_id: int, email_hash: str, now: datetime) -> bool:
        """Erase a subscriber (right to erasure); False when there is no such subscriber.

        The row stays (deliveries refer to it) but is anonymised: a placeholder address,
        no name, status ``erased``, no subscriptions. Bounce records and SMTP replies lose
        the address too. Only ``email_hash`` is kept, in the suppression list.
        """
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return False
            if row.status == "erased":
                return True
            placeholder = f"erased-{subscriber_id}@erased.invalid"
            self._skip_queued(conn, subscriber_id, None, now)
            conn.execute(
                update(deliveries)
                .where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.last_reply.is_not(None))
                .values(last_reply=func.replace(deliveries.c.last_reply, row.email, placeholder))
            )
            conn.execute(
                update(bounce_events)
                .where(or_(bounce_events.c.subscriber_id == subscriber_id, bounce_events.c.email == row.email))
                .values(email=placeholder, diagnostic="")
            )
            conn.execute(subscriptions.delete().where(subscriptions.c.subscriber_id == subscriber_id))
            conn.execute(signups.delete().where(signups.c.subscriber_id == subscriber_id))
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(email=placeholder, name="", status="erased", updated_at=now)
            )
            if not conn.scalar(
                select(suppressions.c.email_hash).where(suppressions.c.email_hash == email_hash)
            ):
                conn.execute(
                    insert(suppressions).values(
                        email_hash=email_hash, reason="erased", created_at=now, note="erasure request"
                    )
                )
            else:
                # Erasure is the last word on an address that had complained before.
                conn.execute(
                    update(suppressions)
                    .where(suppressions.c.email_hash == email_hash)
                    .values(reason="erased", created_at=now, note="erasure request")
                )
            return True

    def is_suppressed(self, email_hash: str) -> bool:
        """Whether an address (by its hash) was erased and must not be added back."""
        with self.engine.connect() as conn:
            return (
                conn.scalar(
                    select(suppressions.c.email_hash).where(suppressions.c.email_hash == email_hash)
                )
                is not None
            )

    # -- issues ----------------------------------------------------------------------

    def find_issue(self, digest_id: str, period: str) -> Issue | None:
        """The issue of ``digest_id`` for ``period``, if it exists."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues).where(issues.c.digest_id == digest_id, issues.c.period == period)
            ).first()
            return None if row is None else self._with_articles(conn, row)

    def _with_articles(self, conn: Connection, row: Any) -> Issue:
        ids = conn.scalars(
            select(issue_articles.c.article_id)
            .where(issue_articles.c.issue_id == row.id)
            .order_by(issue_articles.c.position)
        )
        return _issue(row, list(ids))

    def create_issue(
        self, digest_id: str, period: str, subject: str, article_ids: Sequence[int], now: datetime
    ) -> tuple[Issue, bool]:
        """Create the issue for ``(digest_id, period)``; if another process won, return theirs."""
        try:
            with self.engine.begin() as conn:
                issue_id = conn.execute(
                    insert(issues).values(
                        digest_id=digest_id,
                        period=period,
                        subject=subject,
                        status="sending",
                        created_at=now,
                    )
                ).inserted_primary_key[0]
                if article_ids:
                    conn.execute(
                        insert(issue_articles),
                        [
                            {"issue_id": issue_id, "article_id": a, "position": i}
                            for i, a in enumerate(article_ids)
                        ],
                    )
                row = conn.execute(select(issues).where(issues.c.id == issue_id)).one()
                return _issue(row, article_ids), True
        except IntegrityError:
            existing = self.find_issue(digest_id, period)
            if existing is None:
                raise
            return existing, False

    def open_issues(self, digest_id: str) -> list[Issue]:
        """Issues of ``digest_id`` that still have deliveries to make, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issues)
                .where(issues.c.digest_id == digest_id, issues.c.status == "sending")
                .order_by(issues.c.id)
            ).all()
            return [self._with_articles(conn, r) for r in rows]

    def list_issues(self, limit: int = 50) -> list[Issue]:
        """The newest issues of every digest."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(issues).order_by(issues.c.id.desc()).limit(limit)).all()
            return [self._with_articles(conn, r) for r in rows]

    # -- cadence and operator tools ---------------------------------------------------

    def set_frequency(
        self, subscriber_id: int, done: dict[str, str | None], frequency: str
    ) -> int:
        """Set the cadence of a subscriber's subscriptions; return how many changed.

        ``done`` maps each digest id to the cadence period already behind them (the one
        whose closing fire has passed), so their first roll-up is at the next close.
        Moving to a new frequency starts the cursor at the digest's newest regular issue:
        the next roll-up holds what comes after it, never a backlog.
        """
        changed = 0
        with self.engine.begin() as conn:
            for digest_id, cadence in done.items():
                key = and_(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.digest_id == digest_id,
                )
                current = conn.scalar(select(subscriptions.c.frequency).where(key))
                if current is None or current == frequency:
                    continue
                latest = conn.scalar(
                    select(func.max(issues.c.id)).where(
                        issues.c.digest_id == digest_id, issues.c.cadence == "every"
                    )
                )
                conn.execute(
                    update(subscriptions)
                    .where(key)
                    .values(frequency=frequency, cursor_issue_id=latest or 0, cadence_key=cadence)
                )
                changed += 1
        return changed

    def subscription_frequencies(self, subscriber_id: int) -> dict[str, str]:
        """``{digest_id: frequency}`` of one subscriber."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriptions.c.digest_id, subscriptions.c.frequency).where(
                    subscriptions.c.subscriber_id == subscriber_id
                )
            )
            return {r.digest_id: r.frequency for r in rows}

    def rollup_groups(self, digest_id: str, frequency: str, cadence: str) -> dict[int, list[int]]:
        """Active subscribers of ``frequency`` not yet rolled up for ``cadence``, by cursor."""
        query = (
            select(subscriptions.c.subscriber_id, subscriptions.c.cursor_issue_id)
            .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
            .where(
                subscriptions.c.digest_id == digest_id,
                subscriptions.c.frequency == frequency,
                subscribers.c.status == ACTIVE,
                or_(subscriptions.c.cadence_key.is_(None), subscriptions.c.cadence_key < cadence),
            )
            .order_by(subscriptions.c.subscriber_id)
        )
        groups: dict[int, list[int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                groups.setdefault(row.cursor_issue_id or 0, []).append(row.subscriber_id)
        return groups

    def regular_articles_since(self, digest_id: str, after_issue_id: int) -> tuple[list[int], int]:
        """Article ids of the digest's regular issues after ``after_issue_id`` (newest issue
        first, each in its own order), and the newest such issue id (``after`` if none)."""
        query = (
            select(issue_articles.c.article_id, issues.c.id)
            .join(issues, issues.c.id == issue_articles.c.issue_id)
            .where(
                issues.c.digest_id == digest_id,
                issues.c.cadence == "every",
                issues.c.status != "cancelled",
                issues.c.id > after_issue_id,
            )
            .order_by(issues.c.id.desc(), issue_articles.c.position)
        )
        ids: list[int] = []
        upto = after_issue_id
        with self.engine.connect() as conn:
            for article_id, issue_id in conn.execute(query):
                upto = max(upto, issue_id)
                if article_id not in ids:
                    ids.append(article_id)
        return ids, upto

    def create_rollup(
        self,
        digest_id: str,
        frequency: str,
        cadence: str,
        period: str,
        subject: str,
        cursor: int,
        upto: int,
        article_ids: Sequence[int],
        now: datetime,
        due_at: datetime | None = None,
    ) -> tuple[Issue | None, int]:
        """Create one roll-up issue and queue it for the subscribers at ``cursor``; one
        transaction that also moves their cursor to ``upto`` and marks ``cadence`` done.

        With no ``article_ids`` the cadence period is only marked done (no new articles,
        no issue). If another process made this roll-up first, nothing is written and
        ``(None, 0)`` is returned: the unique ``(digest, period)`` decides.
        """
        due = and_(
            subscriptions.c.digest_id == digest_id,
            subscriptions.c.frequency == frequency,
            func.coalesce(subscriptions.c.cursor_issue_id, 0) == cursor,
            or_(subscriptions.c.cadence_key.is_(None), subscriptions.c.cadence_key < cadence),
        )
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(subscriptions.c.id, subscriptions.c.subscriber_id)
                    .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
                    .where(due, subscribers.c.status == ACTIVE)
                    .with_for_update(of=subscriptions)
                ).all()
                if not rows:
                    return None, 0
                conn.execute(
                    update(subscriptions)
                    .where(subscriptions.c.id.in_([r.id for r in rows]))
                    .values(cursor_issue_id=upto, cadence_key=cadence)
                )
                if not article_ids:
                    return None, 0
                issue_id = conn.execute(
                    insert(issues).values(
                        digest_id=digest_id,
                        period=period,
                        subject=subject,
                        status="sending",
                        cadence=frequency,
                        created_at=now,
                    )
                ).inserted_primary_key[0]
                conn.execute(
                    insert(issue_articles),
                    [
                        {"issue_id": issue_id, "article_id": a, "position": i}
                        for i, a in enumerate(article_ids)
                    ],
                )
                conn.execute(
                    insert(deliveries),
                    [
                        {
                            "issue_id": issue_id,
                            "subscriber_id": r.subscriber_id,
                            "status": "queued",
                            "attempts": 0,
                            "next_attempt_at": due_at or now,
                            "updated_at": now,
                        }
                        for r in rows
                    ],
                )
                row = conn.execute(select(issues).where(issues.c.id == issue_id)).one()
                return _issue(row, article_ids), len(rows)
        except IntegrityError:
            return None, 0

    def issue_cadence(self, issue_id: int) -> str | None:
        """``every`` for a regular issue, the frequency of a roll-up; None if no such issue."""
        with self.engine.connect() as conn:
            return conn.scalar(select(issues.c.cadence).where(issues.c.id == issue_id))

    def requeue_failed(self, issue_id: int, now: datetime) -> int:
        """Queue an issue's ``failed`` deliveries again with a fresh retry budget.

        Bounced ones are left alone (the address does not exist). The issue reopens.
        """
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "failed")
                .values(status="queued", attempts=0, next_attempt_at=now, updated_at=now)
            )
            count = int(result.rowcount or 0)
            if count:
                conn.execute(
                    update(issues).where(issues.c.id == issue_id).values(status="sending")
                )
            return count

    def retry_queue_size(self) -> int:
        """Queued deliveries of open issues that already failed at least once (retries)."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(deliveries.join(issues, issues.c.id == deliveries.c.issue_id))
                    .where(
                        issues.c.status == "sending",
                        deliveries.c.status == "queued",
                        deliveries.c.attempts > 0,
                    )
                )
                or 0
            )

    def last_issue(self, digest_id: str) -> Issue | None:
        """The newest issue of ``digest_id`` (regular or roll-up), if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues)
                .where(issues.c.digest_id == digest_id)
                .order_by(issues.c.id.desc())
                .limit(1)
            ).first()
            return None if row is None else self._with_articles(conn, row)

    # -- deliveries ------------------------------------------------------------------


    def issues_to_deliver(self) -> list[Issue]:
        """Every issue, of any digest, that still has deliveries to make, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issues).where(issues.c.status == "sending").order_by(issues.c.id)
            ).all()
            return [self._with_articles(conn, r) for r in rows]

    def get_issue(self, issue_id: int) -> Issue | None:
        """The issue with this id, if there is one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(issues).where(issues.c.id == issue_id)).first()
            return None if row is None else self._with_articles(conn, row)

    def next_due_at(self) -> datetime | None:
        """When the earliest queued delivery of any open issue becomes due."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.min(deliveries.c.next_attempt_at))
                .join(issues, issues.c.id == deliveries.c.issue_id)
                .where(issues.c.status == "sending", deliveries.c.status == "queued")
            )

    def sent_since(self, issue_id: int, since: datetime) -> tuple[int, datetime | None]:
        """How many deliveries of the issue were recorded sent since ``since``, and the first."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.min(deliveries.c.sent_at)).where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status == "sent",
                    deliveries.c.sent_at >= since,
                )
            ).one()
            return int(row[0] or 0), row[1]

    def set_throttle(self, until: datetime, reply: str, worker: str) -> None:
        """Record that the relay asked us to slow down (421 / 4.7.x), for ``status``."""
        value = json.dumps({"until": until.isoformat(), "reply": reply[:300], "worker": worker})
        with self.engine.begin() as conn:
            conn.execute(settings.delete().where(settings.c.key == THROTTLE_KEY))
            conn.execute(insert(settings).values(key=THROTTLE_KEY, value=value))

    def throttle(self) -> dict[str, Any] | None:
        """The last slow-down the relay asked for: ``until`` (datetime), ``reply``, ``worker``."""
        with self.engine.connect() as conn:
            value = conn.scalar(select(settings.c.value).where(settings.c.key == THROTTLE_KEY))
        if not value:
            return None
        data = json.loads(value)
        data["until"] = datetime.fromisoformat(data["until"])
        return data

    def finish_issue_if_done(self, issue_id: int) -> bool:
        """Mark the issue ``sent`` once no delivery is queued or sending; return whether it is."""
        with self.engine.begin() as conn:
            pending = conn.scalar(
                select(func.count())
                .select_from(deliveries)
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status.in_(("queued", "sending")),
                )
            )
            if pending:
                return False
            # Only a sending issue becomes sent: a cancelled one stays cancelled.
            conn.execute(
                update(issues)
                .where(issues.c.id == issue_id, issues.c.status == "sending")
                .values(status="sent")
            )
            return True

    def next_retry_at(self, issue_id: int) -> datetime | None:
        """When the earliest queued delivery of the issue becomes due."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.issue_id == issue_id, deliveries.c.status == "queued"
                )
            )

    def delivery_counts(self, issue_id: int) -> dict[str, int]:
        """Deliveries of an issue by status (every status present, zero when none)."""
        counts = dict.fromkeys(DELIVERY_STATES, 0)
        with self.engine.connect() as conn:
            for status, count in conn.execute(
                select(deliveries.c.status, func.count())
                .where(deliveries.c.issue_id == issue_id)
                .group_by(deliveries.c.status)
            ):
                counts[status] = count
        return counts

    def failures(self, issue_id: int, limit: int = 5) -> list[tuple[str, int]]:
        """The most common last replies of failed (or bounced) deliveries of an issue."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.last_reply, func.count().label("n"))
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status.in_(("failed", BOUNCED)),
                )
                .group_by(deliveries.c.last_reply)
                .order_by(func.count().desc())
                .limit(limit)
            )
            return [(r.last_reply or "", r.n) for r in rows]


def translate(exc: SQLAlchemyError) -> StoreError:
    """Turn a database exception into a one-line StoreError."""
    orig = getattr(exc, "orig", None) or exc
    return StoreError(f"store: {str(orig).splitlines()[0]}")
