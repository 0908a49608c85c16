"""Where a SQLite store lives on disk, and refusing to invent one (filesystem reads only).

Commands that write (collect, send, run, subscribers add, db upgrade, ...) create a new
SQLite file and its folders on first use. Commands that only read (status, check, issues
list/show, subscribers list/export, preview, send --dry-run) must not: a typo in
``[store] url`` would otherwise leave an empty database behind and report "nothing here"
as if it were true. They open the store with ``create=False``.
"""

from __future__ import annotations

from pathlib import Path

from publisher.errors import StoreError

_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for other databases and in-memory."""
    if not url.startswith(_PREFIX):
        return None
    rest = url[len(_PREFIX) :].split("?", 1)[0]
    if not rest or rest == ":memory:" or rest.startswith("file:"):
        return None
    return Path(rest)


def prepare(url: str, *, create: bool) -> None:
    """Make the SQLite file's folder when ``create``; else require the file to exist."""
    path = sqlite_path(url)
    if path is None:
        return
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        raise StoreError(
            f"no database at {path}: check [store] url in the config "
            "(this command only reads, so it creates nothing; `publisher db upgrade` creates it)"
        )
