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
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    and_,
    create_engine,
    event,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from publisher.errors import StoreError, SubscriberError
from publisher.models import Article, Citation, Issue, Recipient, SendOutcome, Subscriber
from publisher.store.schema import (
    UTCDateTime,
    articles,
    deliveries,
    issue_articles,
    issues,
    settings,
    source_state,
    subscribers,
    subscriptions,
)

MIGRATIONS = Path(__file__).parent / "migrations"
ACTIVE = "active"
DELIVERY_STATES = ("queued", "sending", "sent", "failed", "skipped")


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


def feed_id_for(article: Article, site_host: str, first_seen: datetime) -> str:
    """The permanent feed id: the canonical URL, else a ``tag:`` URI (RFC 4151)."""
    if article.canonical_url:
        return article.canonical_url
    return f"tag:{site_host},{first_seen:%Y-%m-%d}:{article.source}/{article.guid}"


class Store:
    """All database access. Create with :meth:`open`; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and, unless told not to, apply pending migrations."""
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
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
            .where(issues.c.digest_id == digest_id)
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

    def record_source_run(self, source: str, now: datetime, error: str | None) -> None:
        """Remember a source's last success or failure (for ``status``)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(source_state).where(source_state.c.source == source)).first()
            if error is None:
                values = {"last_success_at": now, "last_error": None, "consecutive_failures": 0}
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
                    conn.execute(
                        insert(subscriptions).values(
                            subscriber_id=sub_id,
                            digest_id=digest_id,
                            frequency="every",
                            tags=json.dumps(list(tags)),
                            created_at=now,
                        )
                    )
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

    # -- deliveries ------------------------------------------------------------------

    def plan_deliveries(self, issue: Issue, now: datetime) -> int:
        """Queue one delivery per active subscriber of the issue's digest; return how many.

        One INSERT ... SELECT, so planning is a single statement whatever the list size;
        rows that already exist (a second planner, a restart) are not added again.
        """
        already = exists().where(
            deliveries.c.issue_id == issue.id,
            deliveries.c.subscriber_id == subscriptions.c.subscriber_id,
        )
        source = (
            select(
                literal(issue.id, Integer),
                subscriptions.c.subscriber_id,
                literal("queued", String),
                literal(0, Integer),
                literal(now, UTCDateTime),
                literal(now, UTCDateTime),
            )
            .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
            .where(
                subscriptions.c.digest_id == issue.digest_id,
                subscribers.c.status == ACTIVE,
                ~already,
            )
        )
        columns = [
            "issue_id",
            "subscriber_id",
            "status",
            "attempts",
            "next_attempt_at",
            "updated_at",
        ]
        with self.engine.begin() as conn:
            # rowcount of INSERT ... SELECT is -1 on psycopg; count the returned ids instead.
            result = conn.execute(
                insert(deliveries).from_select(columns, source).returning(deliveries.c.id)
            )
            return len(result.all())

    def claim_batch(
        self, issue_id: int, worker: str, now: datetime, limit: int, lease_seconds: int
    ) -> list[Recipient]:
        """Claim up to ``limit`` due deliveries of one issue under a lease.

        Due means queued with ``next_attempt_at <= now``, or ``sending`` with an expired
        lease (its worker died). Deliveries to subscribers who are no longer active are
        marked ``skipped`` here, so an unsubscribe stops mail still in the queue.
        """
        due = and_(
            deliveries.c.issue_id == issue_id,
            or_(
                and_(deliveries.c.status == "queued", deliveries.c.next_attempt_at <= now),
                and_(deliveries.c.status == "sending", deliveries.c.lease_until < now),
            ),
        )
        query = (
            select(
                deliveries.c.id,
                deliveries.c.subscriber_id,
                deliveries.c.attempts,
                subscribers.c.email,
                subscribers.c.name,
                subscribers.c.status.label("subscriber_status"),
                issues.c.digest_id,
            )
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .join(issues, issues.c.id == deliveries.c.issue_id)
            .where(due)
            .order_by(deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=deliveries)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            inactive = [r.id for r in rows if r.subscriber_status != ACTIVE]
            active = [r for r in rows if r.subscriber_status == ACTIVE]
            if inactive:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(inactive))
                    .values(
                        status="skipped",
                        last_reply="subscriber is no longer active",
                        updated_at=now,
                    )
                )
            if active:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([r.id for r in active]))
                    .values(
                        status="sending",
                        attempts=deliveries.c.attempts + 1,
                        lease_until=now + timedelta(seconds=lease_seconds),
                        claimed_by=worker,
                        updated_at=now,
                    )
                )
        return [
            Recipient(
                delivery_id=r.id,
                issue_id=issue_id,
                subscriber_id=r.subscriber_id,
                email=r.email,
                name=r.name,
                digest_id=r.digest_id,
                attempts=r.attempts + 1,
            )
            for r in active
        ]

    def record_outcomes(
        self,
        outcomes: Sequence[tuple[SendOutcome, int]],
        now: datetime,
        *,
        max_attempts: int,
        retry_at: Any,
    ) -> None:
        """Record a batch of results in one transaction.

        ``outcomes`` pairs each result with the attempt number it was; ``retry_at(attempt,
        delivery_id)`` gives the next attempt time of a temporary failure.
        """
        if not outcomes:
            return
        sent = [o.delivery_id for o, _ in outcomes if o.ok]
        with self.engine.begin() as conn:
            if sent:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(sent), deliveries.c.status == "sending")
                    .values(
                        status="sent",
                        sent_at=now,
                        lease_until=None,
                        last_reply="250 ok",
                        updated_at=now,
                    )
                )
            for outcome, attempt in outcomes:
                if outcome.ok:
                    continue
                final = outcome.permanent or attempt >= max_attempts
                values: dict[str, Any] = {
                    "status": "failed" if final else "queued",
                    "last_reply": outcome.reply[:1000],
                    "lease_until": None,
                    "updated_at": now,
                }
                if not final:
                    values["next_attempt_at"] = retry_at(attempt, outcome.delivery_id)
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == outcome.delivery_id, deliveries.c.status == "sending")
                    .values(**values)
                )

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
            conn.execute(update(issues).where(issues.c.id == issue_id).values(status="sent"))
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
        """The most common last replies of failed deliveries of an issue."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.last_reply, func.count().label("n"))
                .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "failed")
                .group_by(deliveries.c.last_reply)
                .order_by(func.count().desc())
                .limit(limit)
            )
            return [(r.last_reply or "", r.n) for r in rows]


def translate(exc: SQLAlchemyError) -> StoreError:
    """Turn a database exception into a one-line StoreError."""
    orig = getattr(exc, "orig", None) or exc
    return StoreError(f"store: {str(orig).splitlines()[0]}")
