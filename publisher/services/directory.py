"""The subscriber directory (store reads): search by address or name, filter, page by cursor.

One function for every door: the console's subscriber list and the API's
``GET /api/v1/subscribers`` both call :func:`search_subscribers`, so they find the same
people in the same order. Pages are keyset pages (newest first), never OFFSET: see
:mod:`publisher.store.directory`. A page's ``next_cursor`` is opaque to callers: it names
where the next page starts and nothing else, so its format may change without breaking them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import Subscriber
from publisher.store import SubscriberFilter

STATUSES = ("active", "pending", "unsubscribed", "bounced", "erased")
MAX_LIMIT = 500
_CURSOR_PREFIX = "s1:"  # the version of the cursor's format


class CursorError(PublisherError):
    """A cursor that this directory did not hand out (or that was altered)."""


@dataclass(frozen=True)
class Page:
    """One page of subscribers and the cursor of the next (None on the last page)."""

    items: list[Subscriber]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    """The opaque cursor of the page that follows the subscriber ``last_id``."""
    raw = f"{_CURSOR_PREFIX}{last_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The subscriber id a cursor from :func:`encode_cursor` continues after."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError(f"invalid cursor {cursor[:40]!r}: pass the one a page returned") from None
    number = raw.removeprefix(_CURSOR_PREFIX)
    if not raw.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 18:
        raise CursorError(f"invalid cursor {cursor[:40]!r}: pass the one a page returned")
    return int(number)


def search_subscribers(
    app: App,
    *,
    query: str = "",
    digest: str | None = None,
    status: str | None = None,
    topic: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of subscribers, newest first, matching every filter given.

    ``query`` is a case-insensitive substring of the address or the name; ``digest``,
    ``status`` and ``topic`` match exactly (an unknown digest or status is refused with a
    PublisherError). Erased subscribers appear only with ``status="erased"``. ``after`` is
    the ``next_cursor`` of the previous page; ``limit`` is 1 to :data:`MAX_LIMIT`.
    """
    if digest is not None:
        app.config.digest(digest)  # ConfigError naming the known ids
    if status is not None and status not in STATUSES:
        raise PublisherError(f"unknown status {status!r}: choose one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise PublisherError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")
    before_id = None if after is None else decode_cursor(after)
    wanted = SubscriberFilter(query=query.strip(), digest=digest, status=status, topic=topic)
    # One row more than asked says whether another page follows, without a count.
    rows = app.store.search_subscribers(wanted, before_id=before_id, limit=limit + 1)
    items = rows[:limit]
    more = len(rows) > limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)
