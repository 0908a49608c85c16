"""Subscriber imports that run in the background (a thread; store and file I/O).

The console streams an uploaded CSV to a temporary file, then hands it to
:meth:`ImportJobs.start`: the import (:func:`publisher.services.subscribers.import_csv`,
the same as ``publisher subscribers import``) runs in a thread of its own while the page
polls :meth:`ImportJobs.get` for its progress. The job deletes its file when it ends and
writes one audit entry with what it did. Jobs live in the serving process (``publisher
serve`` is one process); the newest :data:`KEEP` are remembered.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from publisher.app import App
from publisher.errors import PublisherError
from publisher.services.audit import Actor, record_audit
from publisher.services.subscribers import import_csv

KEEP = 50
SHOWN_ERRORS = 1000  # rejected rows a progress answer lists (all are counted)
log = logging.getLogger(__name__)


@dataclass
class ImportJob:
    """One import: its file's name, who started it, and how far it is.

    ``state`` is ``reading`` (checking the encoding and counting lines), ``importing``,
    ``done`` or ``failed`` (the file as a whole was refused: ``error`` says why)."""

    id: str
    filename: str
    actor: str
    pending: bool
    started_at: datetime
    state: str = "reading"
    total: int = 0
    done: int = 0
    added: int = 0
    present: int = 0
    subscriptions: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error: str = ""
    finished_at: datetime | None = None

    @property
    def percent(self) -> int:
        """Whole percent of the file's lines read (100 once it ended)."""
        if self.state in ("done", "failed"):
            return 100
        return self.done * 100 // self.total if self.total else 0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the progress endpoint; errors as ``file:line: reason``."""
        return {
            "id": self.id, "state": self.state, "filename": self.filename,
            "total": self.total, "done": self.done, "percent": self.percent,
            "added": self.added, "present": self.present, "rejected": len(self.errors),
            "errors": [f"{self.filename}:{line}: {why}" for line, why in self.errors[:SHOWN_ERRORS]],
            "error": self.error, "finished": self.finished_at is not None,
        }  # fmt: skip


class ImportJobs:
    """The imports of one serving process."""

    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def start(self, app: App, path: Path, filename: str, actor: Actor, *, pending: bool = False) -> ImportJob:
        """Import ``path`` (which the job deletes when it ends) in a new thread; the job."""
        job = ImportJob(secrets.token_urlsafe(12), filename, actor.name, pending, app.clock())
        with self._lock:
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP]:
                del self._jobs[old]
        thread = threading.Thread(
            target=self._run, args=(app, job, path, actor), name=f"import-{job.id}", daemon=True
        )
        thread.start()
        return job

    def get(self, job_id: str) -> ImportJob | None:
        """The job with this id, if this process still remembers it."""
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, app: App, job: ImportJob, path: Path, actor: Actor) -> None:
        def on_start(rows: int):  # type: ignore[no-untyped-def]
            job.total, job.state = rows, "importing"

            def advance(lines: int) -> None:
                job.done += lines

            return advance

        try:
            report = import_csv(app, path, pending=job.pending, on_start=on_start)
        except Exception as exc:  # noqa: BLE001 - a thread's failure must reach the page
            if not isinstance(exc, PublisherError):
                log.exception("import %s (%s) failed", job.id, job.filename)
            # The temporary file's name means nothing to the operator; theirs does.
            job.error = str(exc).replace(str(path), job.filename)
            job.state = "failed"
            self._finish(app, job, actor, f"refused: {job.error}")
            return
        finally:
            path.unlink(missing_ok=True)
        job.added, job.present, job.subscriptions = report.added, report.present, report.subscriptions
        job.errors = report.errors
        job.state = "done"
        self._finish(app, job, actor, f"{report.added} added, {report.present} already present, "
                                      f"{len(report.errors)} rejected")  # fmt: skip

    @staticmethod
    def _finish(app: App, job: ImportJob, actor: Actor, detail: str) -> None:
        try:
            record_audit(app, actor, "subscriber.import", job.filename, detail)
        finally:
            job.finished_at = app.clock()  # last: a poller that sees it sees the whole result
