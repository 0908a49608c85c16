"""The subscriber directory: search, filters and keyset pages, on SQLite and PostgreSQL.

Subscribers are added through the same services the CLI uses; each filter is checked
against what a plain scan of the subscribers would find, and paging must return every
match exactly once, also when rows are added while someone pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect

from publisher.app import App, open_app
from publisher.config import load
from publisher.errors import ConfigError, PublisherError
from publisher.services import directory, subscribers
from publisher.services.directory import CursorError, decode_cursor, encode_cursor
from tests.conftest import write_config

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
DIGESTS = (
    '[[digests]]\nid = "daily"\ntitle = "Daily"\nschedule = "0 7 * * *"\ntimezone = "UTC"\n'
    '[[digests]]\nid = "weekly"\ntitle = "Weekly"\nschedule = "0 7 * * 1"\ntimezone = "UTC"\n'
)


@pytest.fixture
def app(tmp_path: Path, store_url: str) -> App:
    config = load(write_config(tmp_path, store_url=store_url, digests=DIGESTS))
    app = open_app(config, clock=lambda: NOW)
    yield app
    app.store.close()


def _everyone(app: App, **filters: object) -> list[int]:
    """Every page of a search, concatenated (ids, newest first)."""
    ids: list[int] = []
    cursor = None
    while True:
        page = directory.search_subscribers(app, after=cursor, limit=3, **filters)  # type: ignore[arg-type]
        assert len(page.items) <= 3
        ids.extend(s.id for s in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def _populate(app: App) -> dict[str, int]:
    people = {
        "ana.lee@example.org": ("Ana Lee", ["daily"], ["research"]),
        "bo@example.net": ("Bo Ström", ["weekly"], None),
        "cy_100%@example.com": ("Cy", ["daily", "weekly"], ["research", "policy"]),
        "dee@example.org": ("Dee Leeming", ["weekly"], ["policy"]),
        "eve@example.org": ("", ["daily"], None),
        "fay@example.org": ("Fay", ["daily"], ["policy_x"]),
        "gus@example.org": ("Gus", ["weekly"], None),
    }
    for email, (name, digests, tags) in people.items():
        assert subscribers.add(app, email, name=name, digests=digests, tags=tags).ok
    subscribers.remove(app, "gus@example.org")
    ids = {s.email: s.id for s in app.store.list_subscribers()}
    eve = app.store.find_subscriber("eve@example.org")
    assert eve is not None
    app.store.erase_subscriber(eve.id, "hash-of-eve", NOW)
    return ids


def test_filters_find_what_a_scan_finds_and_pages_return_each_once(app: App) -> None:
    ids = _populate(app)
    by = lambda *emails: sorted((ids[e] for e in emails), reverse=True)  # noqa: E731
    visible = [e for e in ids if e != "eve@example.org"]

    assert _everyone(app) == by(*visible)
    # Substring of the address or the name, case-insensitive; wildcards are literal.
    assert _everyone(app, query="LEE") == by("ana.lee@example.org", "dee@example.org")
    assert _everyone(app, query="ström") == by("bo@example.net")
    assert _everyone(app, query="_100%") == by("cy_100%@example.com")
    assert _everyone(app, query="%") == by("cy_100%@example.com")
    assert _everyone(app, query="example.org") == by(
        "ana.lee@example.org", "dee@example.org", "fay@example.org", "gus@example.org"
    )
    assert _everyone(app, digest="daily") == by(
        "ana.lee@example.org", "cy_100%@example.com", "fay@example.org"
    )
    assert _everyone(app, status="unsubscribed") == by("gus@example.org")
    # A topic matches a whole topic, not a part of one ("policy" is not "policy_x").
    assert _everyone(app, topic="policy") == by("cy_100%@example.com", "dee@example.org")
    assert _everyone(app, topic="policy", digest="weekly", query="dee") == by("dee@example.org")
    # Erased people are found only by asking for them, and carry no address any more.
    erased = _everyone(app, status="erased")
    assert erased == by("eve@example.org")
    page = directory.search_subscribers(app, status="erased")
    assert page.items[0].email.endswith("@erased.invalid") and page.items[0].digests == ()
    cy = directory.search_subscribers(app, query="cy_").items[0]
    assert cy.digests == ("daily", "weekly") and cy.name == "Cy"


def test_pages_stay_correct_while_rows_are_added(app: App) -> None:
    for n in range(10):
        subscribers.add(app, f"p{n}@example.org", digests=["daily"])
    first = directory.search_subscribers(app, limit=4)
    assert first.next_cursor is not None
    # A subscriber who arrives now is newer than the first page: no page shifts.
    subscribers.add(app, "late@example.org", digests=["daily"])
    seen = [s.id for s in first.items]
    cursor: str | None = first.next_cursor
    while cursor:
        page = directory.search_subscribers(app, limit=4, after=cursor)
        seen.extend(s.id for s in page.items)
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 10
    assert seen == sorted(seen, reverse=True)


def test_bad_filters_and_cursors_are_refused_with_one_line(app: App) -> None:
    with pytest.raises(ConfigError, match="unknown digest 'monthly'"):
        directory.search_subscribers(app, digest="monthly")
    with pytest.raises(PublisherError, match="unknown status 'gone'"):
        directory.search_subscribers(app, status="gone")
    with pytest.raises(PublisherError, match="limit must be 1 to 500"):
        directory.search_subscribers(app, limit=0)
    for bad in ("not-a-cursor", "", "czE6LTE", encode_cursor(5)[:-2] + "!!", "czE6"):
        with pytest.raises(CursorError):
            decode_cursor(bad)
    assert decode_cursor(encode_cursor(123456)) == 123456


def test_an_index_serves_the_status_pages(app: App) -> None:
    indexes = inspect(app.store.engine).get_indexes("subscribers")
    assert any(i["column_names"] == ["status", "id"] for i in indexes)
