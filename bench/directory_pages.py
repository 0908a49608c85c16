"""Subscriber directory pages at depth: keyset (what the API and console use) vs OFFSET.

Loads N subscribers (half of them in a second digest, one in ten unsubscribed) with the
real import, then, on each store, times one page of 50 near the end of the list:

- (a) ``services.directory.search_subscribers`` with a cursor (keyset: ``id < :cursor``),
  with no filter, with ``status``, with ``digest`` and with a ``q`` substring;
- (b) the baseline: the same page read with ``LIMIT 50 OFFSET depth``;

and prints PostgreSQL's plan of a page of a rare status (one subscriber in a thousand
bounced): a range read of ``ix_subscribers_status_id``, not a walk past every other row.

Run: .venv/bin/python bench/directory_pages.py [--n 200000] [--store sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from publisher.app import App, open_app
from publisher.config import load
from publisher.services import directory, subscribers
from publisher.services.directory import encode_cursor

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("PUBLISHER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONFIG = """
[site]
title = "Bench"
url = "https://news.example.org"
[store]
url = "{url}"
[[digests]]
id = "daily"
title = "Daily"
schedule = "0 7 * * *"
[[digests]]
id = "weekly"
title = "Weekly"
schedule = "0 7 * * 1"
"""


@contextmanager
def store_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"publisher_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def populate(app: App, folder: Path, n: int) -> None:
    roster = folder / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "digests", "status"])
        for i in range(n):
            digests = "daily weekly" if i % 2 else "daily"
            status = "bounced" if i % 1000 == 0 else "unsubscribed" if i % 10 == 0 else "active"
            writer.writerow([f"reader{i:07d}@example{i % 200}.org", f"Reader {i}", digests, status])
    subscribers.import_csv(app, roster)


def timed(fn: object, repeat: int = 5) -> float:
    """The best of ``repeat`` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best * 1000


def run(kind: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, store_url(kind, Path(tmp)) as url:
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(url=url), encoding="utf-8")
        app = open_app(load(config), clock=lambda: NOW)
        populate(app, Path(tmp), n)
        depth = n - n // 20  # 95% of the way down the list
        with app.store.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM subscribers ORDER BY id DESC"))]
        cursor = encode_cursor(ids[depth])
        print(f"\n{kind}: {n:,} subscribers, one page of 50 at depth {depth:,}")
        cases = {
            "no filter": {},
            "status=unsubscribed": {"status": "unsubscribed"},
            "status=bounced": {"status": "bounced"},
            "digest=weekly": {"digest": "weekly"},
            "q=reader00": {"query": "reader00"},
        }
        for label, filters in cases.items():
            keyset = timed(lambda f=filters: directory.search_subscribers(app, after=cursor, **f))
            print(f"  (a) keyset  {label:<20} {keyset:8.2f} ms")
        with app.store.engine.connect() as conn:
            offset = timed(lambda: conn.execute(text(
                f"SELECT * FROM subscribers WHERE status != 'erased' ORDER BY id DESC "
                f"LIMIT 50 OFFSET {depth}")).all())  # fmt: skip
            print(f"  (b) OFFSET  {'no filter':<20} {offset:8.2f} ms")
            if kind == "postgresql":
                plan = conn.execute(text(
                    "EXPLAIN SELECT * FROM subscribers WHERE status = 'bounced' "
                    f"AND id < {ids[depth]} ORDER BY id DESC LIMIT 51")).scalars().all()  # fmt: skip
                print("  plan of the status page:\n    " + "\n    ".join(plan))
        app.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql") if args.store == "both" else (args.store,):
        run(kind, args.n)


if __name__ == "__main__":
    main()
