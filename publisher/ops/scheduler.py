"""The daemon behind ``publisher run`` (clock and signal I/O): APScheduler 3.x jobs.

One cron job per ``[[digests]]`` entry (:func:`publisher.config.cron.trigger`: crontab semantics),
in the digest's time zone, plus an interval job (``[schedule] collect_every``) that
collects, rewrites the feeds and sends deliveries that have become due since (retries, the
opening of a ``send_window``).
Jobs coalesce, never overlap (``max_instances=1``) and run late by at most
``misfire_grace_time``.

Start-up runs one cycle first: collect, then each digest's most recent period if it fired
within ``catch_up`` (never one issue per missed period), and any queued deliveries. The
next fire time of every job is logged. SIGTERM and SIGINT let the running step finish (the
delivery engine stops after the message in flight and records it); the process exits 0.
Sending is keyed by ``(digest, period)`` in the store, so a restart, a second daemon or a
manual ``send`` never makes a second issue.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from publisher.app import App
from publisher.compose import planning
from publisher.config import Config, DigestConfig, parse_duration
from publisher.errors import PublisherError
from publisher.ops import logs
from publisher.services import bounces as bounce_service
from publisher.services import collecting, sending
from publisher.services import feeds as feed_service
from publisher.store import translate

log = logging.getLogger("publisher.ops.scheduler")


@dataclass(frozen=True)
class DaemonSettings:
    """The daemon's timings, from ``[schedule]`` (and per-digest ``catch_up``)."""

    collect_every: timedelta
    misfire_grace: timedelta
    catch_up: timedelta

    @classmethod
    def from_config(cls, config: Config, collect_every: timedelta | None = None) -> DaemonSettings:
        """Read ``[schedule]``; ``collect_every`` (the --collect-every option) overrides it."""
        schedule = config.schedule
        return cls(
            collect_every=collect_every
            or timedelta(seconds=parse_duration(schedule.collect_every)),
            misfire_grace=timedelta(seconds=parse_duration(schedule.misfire_grace_time)),
            catch_up=timedelta(seconds=parse_duration(schedule.catch_up)),
        )

    def catch_up_for(self, digest: DigestConfig) -> timedelta:
        """A digest's own ``catch_up``, else the ``[schedule]`` one."""
        if digest.catch_up:
            return timedelta(seconds=parse_duration(digest.catch_up))
        return self.catch_up


def next_fire_times(
    config: Config, settings: DaemonSettings, now: datetime
) -> dict[str, datetime | None]:
    """Job id -> next fire time after ``now`` (``collect`` and ``digest:<id>``)."""
    times: dict[str, datetime | None] = {"collect": now + settings.collect_every}
    for digest in config.digests:
        times[f"digest:{digest.id}"] = planning.next_fire_time(digest, now)
    return times


class Daemon:
    """The jobs of ``publisher run``; each one logs and never raises."""

    def __init__(self, app: App, settings: DaemonSettings, stop: threading.Event) -> None:
        self.app = app
        self.settings = settings
        self.stop = stop
        app.progress = logs.batch_logger(logging.getLogger("publisher.deliver.engine"))

    def collect_job(self) -> None:
        """Collect, rewrite the feeds, then send whatever became due since the last run."""
        if self.stop.is_set():
            return
        try:
            report = collecting.collect(self.app)
            feeds = feed_service.write_feeds(self.app)
            log.info(
                "collected %d new, %d updated, %d errors; %d feed file(s) rewritten",
                report.new,
                report.updated,
                len(report.errors),
                len(feeds.written),
                extra={"new": report.new, "updated": report.updated, "errors": len(report.errors)},
            )
            for error in report.errors:
                log.warning("%s", error)
        except PublisherError as exc:
            log.error("collect failed: %s", exc)
        except SQLAlchemyError as exc:  # a database hiccup never stops the daemon
            log.error("collect failed: %s", translate(exc))
        self.deliver_due()

    def deliver_due(self) -> None:
        """Send queued deliveries of open issues that are due now (retries, quiet hours)."""
        try:
            due = self.app.store.next_due_at()
            if due is None or due > self.app.clock():
                return
            for issue in self.app.store.issues_to_deliver():
                if self.stop.is_set():
                    return
                self._log_report(
                    issue.digest_id, sending.deliver_open_issue(self.app, issue, self.stop)
                )
        except PublisherError as exc:
            log.error("delivery of queued messages failed: %s", exc)

    def bounce_job(self) -> None:
        """Poll the [bounces] IMAP folder; a failing server is logged, never fatal."""
        if self.stop.is_set():
            return
        try:
            report, moved = bounce_service.poll_bounces(self.app)
            log.info(
                "bounces: %d message(s), %d hard, %d soft, %d subscriber(s) marked bounced, "
                "%d ARF complaint(s), %d moved",
                report.messages, report.hard, report.soft, len(report.marked),
                report.complaints, moved,
            )  # fmt: skip
        except PublisherError as exc:
            log.error("bounce polling failed: %s", exc)

    def digest_job(self, digest_id: str) -> None:
        """Create the digest's issue for the current period (if new articles) and send it."""
        if self.stop.is_set():
            return
        try:
            for report in sending.send_digest(self.app, digest_id, stop=self.stop):
                self._log_report(digest_id, report)
        except PublisherError as exc:
            log.error("digest %s failed: %s", digest_id, exc)

    def start_up(self) -> None:
        """The first cycle: collect, read bounces, catch up each digest's latest missed
        period, resume."""
        self.collect_job()
        if self.app.config.bounces.imap_host:
            # Before sending, so that addresses that bounced while we were down get nothing.
            self.bounce_job()
        now = self.app.clock()
        for digest in self.app.config.digests:
            if self.stop.is_set():
                return
            window = self.settings.catch_up_for(digest)
            period = planning.current_period(digest, now)
            if period is None or planning.catch_up_period(digest, now, window) is not None:
                self.digest_job(digest.id)
                continue
            if self.app.store.find_issue(digest.id, period.key) is None:
                log.info(
                    "digest %s: period %s (fired %s) is older than catch_up %s; not sent, "
                    "waiting for the next one",
                    digest.id,
                    period.key,
                    period.fire_time.isoformat(),
                    window,
                    extra={"digest": digest.id, "period": period.key},
                )
            self._resume(digest.id)

    def _resume(self, digest_id: str) -> None:
        try:
            for issue in self.app.store.open_issues(digest_id):
                if self.stop.is_set():
                    return
                report = sending.deliver_open_issue(self.app, issue, self.stop)
                report.note = "resumed"
                self._log_report(digest_id, report)
        except PublisherError as exc:
            log.error("digest %s failed: %s", digest_id, exc)

    @staticmethod
    def _log_report(digest_id: str, report: object) -> None:
        issue = getattr(report, "issue", None)
        log.info(
            "digest %s: %s sent=%d failed=%d retrying=%d %s",
            digest_id,
            issue.period if issue else "-",
            getattr(report, "sent", 0),
            getattr(report, "failed", 0),
            getattr(report, "retrying", 0),
            getattr(report, "note", ""),
            extra={"digest": digest_id, "issue_id": issue.id if issue else None},
        )


def build_scheduler(daemon: Daemon, config: Config, settings: DaemonSettings) -> BlockingScheduler:
    """The APScheduler jobs: one interval collect job and one cron job per digest."""
    scheduler = BlockingScheduler(timezone="UTC")
    grace = max(1, int(settings.misfire_grace.total_seconds()))
    scheduler.add_job(
        daemon.collect_job,
        IntervalTrigger(seconds=int(settings.collect_every.total_seconds())),
        id="collect",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=grace,
    )
    if config.bounces.imap_host:
        scheduler.add_job(
            daemon.bounce_job,
            IntervalTrigger(minutes=config.bounces.poll_minutes),
            id="bounces",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
        )
    for digest in config.digests:
        scheduler.add_job(
            daemon.digest_job,
            planning.trigger_for(digest),
            args=[digest.id],
            id=f"digest:{digest.id}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
        )
    return scheduler


def run_daemon(
    app: App,
    collect_every: timedelta | None = None,
    *,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Schedule every digest and the collector; block until SIGTERM/SIGINT."""
    settings = DaemonSettings.from_config(app.config, collect_every)
    stop = threading.Event()
    daemon = Daemon(app, settings, stop)
    scheduler = build_scheduler(daemon, app.config, settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d: finishing the current step", signum)
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    daemon.start_up()
    if stop.is_set():
        log.info("stopped during start-up")
        return
    now = app.clock()
    for job_id, at in next_fire_times(app.config, settings, now).items():
        if job_id == "collect":
            log.info(
                "collect: every %s, next at %s",
                settings.collect_every,
                at.isoformat() if at else "-",
            )
        else:
            log.info(
                "%s: next scheduled issue at %s",
                job_id.replace(":", " "),
                at.isoformat() if at else "never",
                extra={"job": job_id, "next_fire_time": at.isoformat() if at else None},
            )
    if on_ready is not None:
        on_ready()

    def stop_if_signalled() -> None:
        # A signal that came after the check above but before start() found the scheduler
        # not running yet; this first job (due at once) closes that gap.
        if stop.is_set() and scheduler.running:
            scheduler.shutdown(wait=False)

    scheduler.add_job(stop_if_signalled, id="signal-guard")
    from publisher.ops.webhook_pump import webhook_pump

    with webhook_pump(app, stop):  # webhooks go out while the daemon runs
        try:
            scheduler.start()
        except JobLookupError:
            # A signal handled while APScheduler was between running a one-shot job and
            # removing it: shutdown() from the handler left the scheduler stopped, where
            # remove_job() looks only at pending jobs and raises. The daemon was stopping
            # anyway; anything else is a bug.
            if not stop.is_set():
                raise
    log.info("stopped")
