"""Log set-up (stderr I/O): a human format on a terminal, JSON lines for machines.

Everything logs through the standard :mod:`logging` module under the ``publisher``
logger. ``--log-format json`` writes one JSON object per line with ``ts`` (UTC, ISO
8601), ``level``, ``logger``, ``message`` and any ``extra=`` fields a call passed, so a
log shipper can index, for example, a delivery batch's ``issue_id``, ``count`` and
``duration_s``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # only annotations: importing delivery here would load SQLAlchemy for --help
    from publisher.deliver.engine import DeliveryResult
    from publisher.models import Issue

LOG_FORMATS = ("human", "json")
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra=`` fields are kept as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record`` as a single line of JSON."""
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = (
                    value if isinstance(value, int | float | str | bool | None) else str(value)
                )
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup(log_format: str, level: int, stream: TextIO | None = None) -> None:
    """Configure the root logger once: ``human`` (the default) or ``json`` lines on stderr."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def batch_logger(
    logger: logging.Logger, clock: Callable[[], float] = time.monotonic
) -> Callable[[Issue], Callable[[DeliveryResult], None]]:
    """A progress factory for the delivery engine that logs each recorded batch:
    the issue id, how many messages it recorded and how long it took."""

    def factory(issue: Issue) -> Callable[[DeliveryResult], None]:
        last = {"done": 0, "retrying": 0, "at": clock()}

        def update(result: DeliveryResult) -> None:
            now = clock()
            count = result.done + result.retrying - last["done"] - last["retrying"]
            duration = now - last["at"]
            last.update(done=result.done, retrying=result.retrying, at=now)
            logger.info(
                "issue %d: batch of %d recorded in %.2fs (%d sent, %d failed, %d to retry so far)",
                issue.id,
                count,
                duration,
                result.sent,
                result.failed + result.bounced,
                result.retrying,
                extra={"issue_id": issue.id, "count": count, "duration_s": round(duration, 3)},
            )

        return update

    return factory
