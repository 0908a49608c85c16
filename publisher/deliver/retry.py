"""Retry policy (pure, no I/O): how an SMTP reply is sorted and when a retry is due.

Shared by the engine (live sends) and the liveness module (replaying a gone worker's
journal), so both schedule retries the same way; it imports nothing of theirs.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def retry_delay(attempt: int, delivery_id: int, base_seconds: int) -> timedelta:
    """Exponential backoff with deterministic jitter: base * 2^(attempt-1) * [1, 1.5)."""
    jitter = int(hashlib.sha256(f"{delivery_id}:{attempt}".encode()).hexdigest()[:4], 16) / 0x10000
    seconds = base_seconds * (2 ** max(0, attempt - 1)) * (1 + jitter / 2)
    return timedelta(seconds=min(seconds, 6 * 3600))


def is_bounce(code: int | None, reply: str) -> bool:
    """A permanent "no such user / bad mailbox" reply (enhanced status 5.1.x)."""
    match = _ENHANCED.search(reply)
    return bool(code and code >= 500 and match and match[1] == "5" and match[2] == "1")


def is_throttle(code: int | None, reply: str) -> bool:
    """The relay asks us to slow down: 421, or enhanced status 4.7.x."""
    match = _ENHANCED.search(reply)
    return code == 421 or bool(
        code and 400 <= code < 500 and match and match[1] == "4" and match[2] == "7"
    )
