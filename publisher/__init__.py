"""publisher: an email newsletter and syndication publisher (no I/O at import time)."""

from __future__ import annotations

__version__ = "0.1.0"
