"""Writing the feeds (disk, store and network I/O) through :mod:`publisher.syndicate.writer`."""

from __future__ import annotations

from publisher.app import App
from publisher.syndicate import writer as feedwriter

FeedsReport = feedwriter.FeedsReport


def write_feeds(app: App, *, force: bool = False) -> FeedsReport:
    """Write every configured feed (see :mod:`publisher.syndicate.writer`): only what changed.

    ``force`` rebuilds every file instead of trusting the last build's fingerprints;
    files are still written only when their bytes changed.
    """
    return feedwriter.write_feeds(app.config, app.store, app.clock(), force=force)
