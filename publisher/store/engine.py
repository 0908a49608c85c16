"""Store engine set-up (database I/O): connecting, SQLite tuning, migrations, settings, errors.

The same code serves SQLite and PostgreSQL. SQLite runs in WAL mode with
``synchronous=NORMAL`` and takes the write lock at the start of each transaction
(``BEGIN IMMEDIATE``), so the claim of a delivery batch is atomic. Read-only commands open
the store with ``create=False``: a missing SQLite file is then an error, never a new empty
database (see :mod:`publisher.store.location`). :func:`translate` turns a database
exception into the one-line :class:`~publisher.errors.StoreError` the CLI prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Connection, Engine, create_engine, event, insert, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from publisher.errors import StoreError
from publisher.store import location
from publisher.store.schema import settings

MIGRATIONS = Path(__file__).parent / "migrations"


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


def translate(exc: SQLAlchemyError) -> StoreError:
    """Turn a database exception into a one-line StoreError."""
    orig = getattr(exc, "orig", None) or exc
    return StoreError(f"store: {str(orig).splitlines()[0]}")


def read_setting(
    engine: Engine, key: str, default_factory: Callable[[], str] | None = None
) -> str | None:
    """Read a setting; create it with ``default_factory()`` when it is missing."""
    with engine.begin() as conn:
        value = conn.scalar(select(settings.c.value).where(settings.c.key == key))
        if value is None and default_factory is not None:
            value = default_factory()
            conn.execute(insert(settings).values(key=key, value=value))
        return value


class Lifecycle:
    """Opening, migrating and closing a store; the base of :class:`publisher.store.Store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, create: bool = True) -> Self:
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

    def setting(self, key: str, default_factory: Any = None) -> str | None:
        """Read a setting; create it with ``default_factory()`` when it is missing."""
        return read_setting(self.engine, key, default_factory)
