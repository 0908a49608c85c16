"""Plain-text layout for the text part of a message (pure, no I/O).

RFC 5322 recommends lines of at most 78 characters. :func:`wrap` fills text to that width.
A URL cannot be broken without breaking the link, so one that does not fit goes on a line
of its own, with no indent, where mail clients still recognise and linkify it; any other
word longer than a line is split.
"""

from __future__ import annotations

import re
import textwrap

WIDTH = 78
_URL = re.compile(r"(?:https?|mailto):\S+", re.I)


def is_url(word: str) -> bool:
    """Whether ``word`` is a whole http(s) or mailto URL."""
    return _URL.fullmatch(word) is not None


def wrap(text: str, width: int = WIDTH, indent: str = "", first: str | None = None) -> str:
    """Fill ``text`` to ``width`` columns; ``first`` prefixes line one, ``indent`` the rest.

    Whitespace is collapsed. A URL longer than the room left on a line is put on a line
    of its own, unindented, even when that line is longer than ``width``.
    """
    prefix = indent if first is None else first
    lines: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        nonlocal prefix
        if pending:
            lines.extend(
                textwrap.wrap(
                    " ".join(pending),
                    width=width,
                    initial_indent=prefix,
                    subsequent_indent=indent,
                    break_long_words=True,
                    break_on_hyphens=False,
                )
            )
            pending.clear()
            prefix = indent

    for word in str(text).split():
        if is_url(word) and len(indent) + len(word) > width:
            flush()
            if prefix.strip():  # a label such as "Source:" keeps its own line
                lines.append(prefix.rstrip())
                prefix = indent
            lines.append(word)
        else:
            pending.append(word)
    flush()
    return "\n".join(lines)


def wrap_greeting(greeting: str, width: int = WIDTH) -> str:
    """A personal line (``Hi <name>,``) wrapped only when it is too long: cheap per recipient."""
    return greeting if len(greeting) <= width else wrap(greeting, width)
