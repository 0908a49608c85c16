"""Collecting (network, disk and store I/O): every source into the store, concurrently per host."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from publisher.app import App
from publisher.collect import registry as sources
from publisher.config import SourceConfig
from publisher.errors import PublisherError
from publisher.models import CollectReport

FETCH_WORKERS = 4


POLITENESS_SECONDS = 1.0


FAILURE_ALERT_AFTER = 3


def _collect_group(
    app: App, group: list[SourceConfig], states: dict[str, dict[str, Any]], now: datetime
) -> list[tuple[SourceConfig, sources.Collected]]:
    """Collect the sources of one host one after another, with a politeness delay."""
    results = []
    for index, source in enumerate(group):
        if index:
            time.sleep(POLITENESS_SECONDS)
        row = states.get(source.name)
        state = sources.SourceState(
            etag=row["etag"] if row else None,
            last_modified=row["last_modified"] if row else None,
            seen_before=bool(row and row["last_success_at"]),
        )
        try:
            collected = sources.collect(source, app.config.site.url, state, now)
        except PublisherError as exc:
            collected = sources.Collected(failed=f"source {source.name!r}: {exc}")
        results.append((source, collected))
    return results


def collect(app: App, on_source: Callable[[int], None] | None = None) -> CollectReport:
    """Collect every source into the store; one bad item or source never stops the rest.

    Remote sources are fetched concurrently, one worker per host so that a host is never
    hit by two requests at once. A source that keeps failing is reported on its first
    failure and again when it reaches ``FAILURE_ALERT_AFTER`` runs in a row, not on every
    run; ``publisher status`` always shows it.

    ``on_source(n)`` is told each time ``n`` more sources are done (for a progress bar).
    """
    report = CollectReport()
    now = app.clock()
    states = {row["source"]: row for row in app.store.source_states()}
    groups: dict[str, list[SourceConfig]] = {}
    for source in app.config.sources:
        host = (urlsplit(source.url).hostname or "") if source.url else f"local:{source.name}"
        groups.setdefault(host, []).append(source)
    with ThreadPoolExecutor(max_workers=min(FETCH_WORKERS, max(1, len(groups)))) as pool:
        def run_group(group: list[SourceConfig]) -> list[tuple[SourceConfig, sources.Collected]]:
            results = _collect_group(app, group, states, now)
            if on_source:
                on_source(len(group))
            return results

        batches = list(pool.map(run_group, groups.values()))
    for source, collected in (item for batch in batches for item in batch):
        report.errors.extend(collected.errors)
        for article in collected.articles:
            outcome = app.store.upsert_article(article, now, app.site_host)
            setattr(report, outcome, getattr(report, outcome) + 1)
        failures = app.store.record_source_run(
            source.name,
            now,
            collected.failed,
            etag=collected.etag,
            last_modified=collected.last_modified,
        )
        if collected.failed:
            report.failed_sources.append(source.name)
        if collected.failed and failures == 1:
            report.errors.append(collected.failed)
        elif collected.failed and failures == FAILURE_ALERT_AFTER:
            report.errors.append(f"{collected.failed} (failing for {failures} runs in a row)")
    return report


# -- feeds ---------------------------------------------------------------------------
