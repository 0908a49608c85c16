"""One cycle of the job (all I/O through the services): collect, feeds, every due digest.

``collect -> store -> feeds -> due digests -> deliver``: what ``run --once`` does and what the
daemon does on each firing of the collect job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import CollectReport, SendReport
from publisher.services.collecting import collect
from publisher.services.feeds import FeedsReport, write_feeds
from publisher.services.sending import send_digest


@dataclass
class RunReport:
    """What ``run --once`` did."""

    collected: CollectReport
    feeds: FeedsReport
    sends: list[SendReport]
    errors: list[str] = field(default_factory=list)


def run_once(app: App, stop: threading.Event | None = None) -> RunReport:
    """Collect, write feeds, then send every due digest; one failing digest never stops others."""
    collected = collect(app)
    feeds = write_feeds(app)
    sends: list[SendReport] = []
    errors: list[str] = []
    for digest in app.config.digests:
        try:
            sends.extend(send_digest(app, digest.id, stop=stop))
        except PublisherError as exc:
            errors.append(f"digest {digest.id!r}: {exc}")
    return RunReport(collected=collected, feeds=feeds, sends=sends, errors=errors)
