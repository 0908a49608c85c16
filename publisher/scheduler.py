"""The daemon behind ``publisher run`` (clock and signal I/O): APScheduler 3.x jobs.

One cron job per ``[[digests]]`` entry, in the digest's time zone, plus an interval job
that collects and rewrites the feeds. Jobs coalesce and never overlap. SIGTERM and SIGINT
let the running step finish (the delivery engine stops after the message in flight and
records it) and then exit.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from publisher import pipeline, planning
from publisher.errors import PublisherError

log = logging.getLogger("publisher.scheduler")


def run_daemon(app: pipeline.App, collect_every: timedelta, misfire_grace: int = 3600) -> None:
    """Schedule every digest and the collector; block until SIGTERM/SIGINT."""
    stop = threading.Event()
    scheduler = BlockingScheduler(timezone="UTC")

    def collect_job() -> None:
        try:
            report = pipeline.collect(app)
            feeds = pipeline.write_feeds(app)
            log.info(
                "collected %d new, %d updated, %d errors; %d feed file(s) rewritten",
                report.new,
                report.updated,
                len(report.errors),
                len(feeds.written),
            )
            for error in report.errors:
                log.warning("%s", error)
        except PublisherError as exc:
            log.error("collect failed: %s", exc)

    def digest_job(digest_id: str) -> None:
        try:
            for report in pipeline.send_digest(app, digest_id, stop=stop):
                log.info(
                    "digest %s: %s sent=%d failed=%d retrying=%d %s",
                    digest_id,
                    report.issue.period if report.issue else "-",
                    report.sent,
                    report.failed,
                    report.retrying,
                    report.note,
                )
        except PublisherError as exc:
            log.error("digest %s failed: %s", digest_id, exc)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d: finishing the current step", signum)
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # One cycle at start, in order: sending is keyed by period, so this sends the current
    # period's issue if it is still missing (catch-up after downtime) and nothing otherwise.
    collect_job()
    for digest in app.config.digests:
        if stop.is_set():
            return
        digest_job(digest.id)
    if stop.is_set():
        return

    now = app.clock()
    scheduler.add_job(
        collect_job,
        IntervalTrigger(seconds=int(collect_every.total_seconds())),
        id="collect",
        coalesce=True,
        max_instances=1,
    )
    for digest in app.config.digests:
        scheduler.add_job(
            digest_job,
            planning.trigger_for(digest),
            args=[digest.id],
            id=f"digest:{digest.id}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=misfire_grace,
        )
        log.info(
            "digest %s: next scheduled issue at %s", digest.id, planning.next_fire_time(digest, now)
        )
    scheduler.start()
