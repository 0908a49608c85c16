"""Two processes storing the same article at once on PostgreSQL (two daemons sharing one
database): the second insert meets the unique key and is read as the stored row."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from publisher.store import Store
from tests.test_feeds_build import make_article

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def test_an_article_stored_by_another_process_mid_upsert_is_not_an_error(pg_url: str) -> None:
    ours, theirs = Store.open(pg_url), Store.open(pg_url)
    article = make_article(1)
    raced: list[str] = []

    def before(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
        # Just before our INSERT, the other daemon commits the same (source, guid).
        if statement.lstrip().upper().startswith("INSERT INTO ARTICLES") and not raced:
            raced.append(theirs.upsert_article(article, NOW, "news.example.org"))

    event.listen(ours.engine, "before_cursor_execute", before)
    try:
        assert ours.upsert_article(article, NOW, "news.example.org") == "unchanged"
        assert raced == ["new"]
        assert ours.count_articles() == 1
        edited = make_article(1, content_hash="hash-edited", title="Story 1, edited")
        assert ours.upsert_article(edited, NOW, "news.example.org") == "updated"
    finally:
        event.remove(ours.engine, "before_cursor_execute", before)
        ours.close()
        theirs.close()
