"""Per-subscriber cost of personalisation against re-rendering for every subscriber.

Prints, from one run: the time to render + inline one issue (what a naive sender pays per
subscriber), the time to personalise the prepared issue for one subscriber (what we pay),
and their ratio. Run: .venv/bin/python bench/render.py [--articles 15] [--subscribers 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from publisher.compose import messages, render
from publisher.config import DigestConfig, SiteConfig
from publisher.models import Article, Citation

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def sample_articles(n: int) -> list[Article]:
    body = "<p>" + "Researchers report careful, incremental progress. " * 40 + "</p>"
    return [
        Article(
            source="bench",
            guid=f"a{i}",
            title=f"Sample article number {i} on pleural mesothelioma research",
            url=f"https://news.example.org/a{i}/",
            published_at=NOW - timedelta(hours=i),
            updated_at=NOW - timedelta(hours=i),
            content_html=body,
            summary="A fictional summary of two sentences. It has enough words to look real. " * 2,
            author="Dana Whitfield",
            tags=("research", "surgery"),
            citations=(
                Citation(
                    "Example A, et al. A paper. Journal of Examples, 2026",
                    "https://journals.example.org/1",
                ),
            ),
            id=i,
            feed_id=f"tag:news.example.org,2026:a{i}",
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=15)
    parser.add_argument("--subscribers", type=int, default=2000)
    args = parser.parse_args()
    templates = render.load_templates()
    site = SiteConfig(
        title="Pleura Health News", url="https://news.example.org", postal_address="1 Example St"
    )
    digest = DigestConfig(id="daily", title="Pleura Daily")
    articles = sample_articles(args.articles)

    naive = []
    for _ in range(20):
        start = time.perf_counter()
        rendered = render.render_issue(templates, site, digest, articles, NOW)
        naive.append(time.perf_counter() - start)
    template = messages.prepare(
        rendered, issue_id=1, site_title=site.title, site_url=site.url, digest_id="daily",
        digest_title=digest.title, from_addr="news@news.example.org", reply_to="", now=NOW,
    )  # fmt: skip
    start = time.perf_counter()
    size = 0
    for i in range(args.subscribers):
        person = messages.Personal(
            subscriber_id=i,
            email=f"user{i}@example.org",
            name=f"Reader {i}",
            unsubscribe_url=f"https://news.example.org/mail/unsubscribe/token{i}",
            preferences_url=f"https://news.example.org/mail/preferences/token{i}",
        )
        size += len(messages.personalize(template, person))
    per_subscriber = (time.perf_counter() - start) / args.subscribers
    naive_ms = statistics.median(naive) * 1000
    print(f"issue: {args.articles} articles, {len(rendered.html) / 1024:.1f} KB inlined HTML")
    print(f"baseline (render + inline per subscriber): {naive_ms:.2f} ms/subscriber (median of 20)")
    print(
        f"publisher (personalise prepared issue):    {per_subscriber * 1000:.3f} ms/subscriber "
        f"({args.subscribers} subscribers, {size / args.subscribers / 1024:.1f} KB/message)"
    )
    print(f"ratio: {naive_ms / (per_subscriber * 1000):.0f}x cheaper (target >= 200x)")


if __name__ == "__main__":
    main()
