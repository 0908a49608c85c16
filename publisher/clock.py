"""The only place that reads the wall clock (I/O edge).

Everything else receives ``now`` as an argument. ``PUBLISHER_NOW`` pins the clock for a
whole process (an ISO 8601 datetime with an offset), which tests and backfills use to run
the CLI "as of" a given moment.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from publisher.errors import ConfigError

NOW_ENV = "PUBLISHER_NOW"


def parse_aware(value: str, *, what: str) -> datetime:
    """Parse an ISO 8601 datetime that carries an offset and return it in UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{what}: {value!r} is not an ISO 8601 datetime") from exc
    if parsed.tzinfo is None:
        raise ConfigError(f"{what}: {value!r} has no time zone offset (add +00:00 or Z)")
    return parsed.astimezone(UTC)


def now() -> datetime:
    """Return the current time as an aware UTC datetime (or the pinned ``PUBLISHER_NOW``)."""
    pinned = os.environ.get(NOW_ENV)
    if pinned:
        return parse_aware(pinned, what=NOW_ENV)
    return datetime.now(UTC)
