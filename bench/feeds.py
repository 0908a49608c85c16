"""Feed build: the full build against the no-change rebuild, from one run.

Stores 10,000 articles with 5 KB bodies in a SQLite file in a temporary folder, spread
over 200 tags, then times ``write_feeds`` with the three formats, ``limit = 50`` and
``per_tag = true`` (201 feeds, 603 files):

- full build: empty output folder, nothing remembered;
- no-change rebuild: the same store again (the baseline to beat: >= 10x faster);
- one new article: what a typical collect cycle costs;
- forced rebuild: every file built again and compared byte for byte (``feeds --force``).

Run: .venv/bin/python bench/feeds.py [--articles 10000] [--tags 200] [--limit 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from publisher import config as config_module
from publisher.app import App
from publisher.models import Article
from publisher.services import feeds as feed_service
from publisher.store import Store, feed_id_for
from publisher.store.schema import articles as articles_table

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BODY = "<p>" + "Researchers report careful, incremental progress in trials. " * 84 + "</p>"


def seed(store: Store, count: int, tags: int) -> None:
    rows = []
    for i in range(count):
        published = NOW - timedelta(minutes=10 * i)
        article = Article(
            source="bench",
            guid=f"a{i}",
            title=f"Sample article number {i}",
            url=f"https://news.example.org/a{i}/",
            published_at=published,
            updated_at=published,
            content_html=BODY,
        )
        rows.append(
            {
                "source": "bench",
                "guid": article.guid,
                "feed_id": feed_id_for(article, "news.example.org", published),
                "title": article.title,
                "url": article.url,
                "author": f"Author {i % 7}",
                "summary": "A fictional summary of the article.",
                "content_html": BODY,
                "tags": json.dumps([f"topic-{i % tags}", f"topic-{(i * 7 + 3) % tags}"]),
                "image": f"https://news.example.org/images/{i}.jpg",
                "canonical_url": None,
                "citations": "[]",
                "content_hash": f"h{i}",
                "published_at": published,
                "updated_at": published,
                "first_seen_at": published,
            }
        )
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(insert(articles_table), rows[start : start + 1000])


def timed(app: App, **kwargs: bool) -> tuple[float, feed_service.FeedsReport]:
    start = time.perf_counter()
    report = feed_service.write_feeds(app, **kwargs)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "config.toml"
        path.write_text(
            '[site]\ntitle = "Bench"\nurl = "https://news.example.org"\n\n'
            f'[store]\nurl = "sqlite:///{folder / "bench.db"}"\n\n'
            f'[feeds]\noutput_dir = "feeds"\nlimit = {args.limit}\nper_tag = true\n',
            encoding="utf-8",
        )
        config = config_module.load(path)
        store = Store.open(config.store_url)
        seed(store, args.articles, args.tags)
        app = App(config=config, store=store, clock=lambda: NOW)

        full, report = timed(app)
        files = len(report.written)
        size = sum(p.stat().st_size for p in report.written)
        rebuilds = [timed(app)[0] for _ in range(5)]
        rebuild = sorted(rebuilds)[len(rebuilds) // 2]
        store.upsert_article(
            Article(
                source="bench",
                guid="new",
                title="One new article",
                url="https://news.example.org/new/",
                published_at=NOW + timedelta(minutes=1),
                updated_at=NOW + timedelta(minutes=1),
                content_html=BODY,
                tags=("topic-1",),
                content_hash="new",
            ),
            NOW,
            "news.example.org",
        )
        one_new, new_report = timed(app)
        forced, forced_report = timed(app, force=True)
        store.close()

    print(
        f"store: {args.articles} articles x {len(BODY)} B bodies, {args.tags} tags, "
        f"limit {args.limit}, 3 formats"
    )
    print(f"full build          {full * 1000:9.1f} ms  ({files} files, {size / 1e6:.1f} MB)")
    print(
        f"no-change rebuild   {rebuild * 1000:9.1f} ms  (median of 5, 0 files written)  "
        f"{full / rebuild:6.1f}x faster than the full build (target >= 10x)"
    )
    print(
        f"one new article     {one_new * 1000:9.1f} ms  ({len(new_report.written)} files written)"
    )
    print(
        f"forced rebuild      {forced * 1000:9.1f} ms  "
        f"({len(forced_report.written)} written, {len(forced_report.unchanged)} unchanged)"
    )
    if full / rebuild < 10:
        raise SystemExit("the no-change rebuild is less than 10x faster than the full build")


if __name__ == "__main__":
    main()
