"""Parsers and checks for single setting values: durations, windows, choices, URLs, addresses.

Pure: no I/O. Each takes the value and ``where`` (the ``file:line: key`` prefix from
:mod:`publisher.config.locate`) and raises ConfigError with that prefix. ``parse_duration``
and ``parse_window`` are also used at run time, by the scheduler, planning and the web.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import getaddresses, parseaddr

from publisher.errors import ConfigError

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_duration(value: str, where: str = "duration") -> int:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1w"`` (or ``"0"``) -> whole seconds."""
    if value.strip() == "0":
        return 0
    match = _DURATION.match(value)
    if not match:
        raise ConfigError(
            f"{where}: {value!r} is not a duration (write a number and a unit: 90s, 15m, 2h, 1d, 1w)"
        )
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def parse_window(value: str, where: str = "send_window") -> tuple[int, int]:
    """``"07:00-20:00"`` -> (start, end) in minutes after local midnight; may wrap midnight."""
    match = _WINDOW.match(value)
    problem = "" if match else "is not HH:MM-HH:MM"
    if match:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            problem = "has an hour or minute out of range"
        elif (h1, m1) == (h2, m2):
            problem = "is empty (start equals end)"
        else:
            return h1 * 60 + m1, h2 * 60 + m2
    raise ConfigError(f'{where}: {value!r} {problem} (for example "07:00-20:00")')


def check_choice(value: str, choices: Iterable[str], where: str) -> None:
    """Fail unless ``value`` is one of ``choices``, listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")


def check_url(value: str, where: str) -> None:
    """Fail unless ``value`` is an absolute http(s) URL."""
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{where}: {value!r} is not an absolute http(s) URL")


def check_reply_to(value: str, where: str) -> None:
    """Fail unless ``value`` is one address ("Name <address>" or bare), ASCII, no line breaks."""
    _, address = parseaddr(value)
    problem = ""
    if not address or _CONTROL_CHARS.search(value):
        problem = "is not an address"
    else:
        # Imported here: it costs ~0.2 s, which every `publisher COMMAND --help` would pay.
        from email_validator import EmailNotValidError, validate_email

        try:
            validate_email(address, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            problem = str(exc)
    if problem:
        raise ConfigError(f"{where}: {value!r}: {problem}")


def split_sender(raw: str, where: str) -> tuple[str, str]:
    """Split ``[delivery] from`` ("Name <address>" or an address) into (name, address).

    ``email.utils`` splits it, since the validator takes only a bare address; the name is
    "" when none is written.
    """
    pairs = getaddresses([raw])
    name, address = pairs[0] if len(pairs) == 1 else ("", "")
    problem = ""
    if _CONTROL_CHARS.search(raw):
        problem = "holds a control character (a line break could forge headers)"
    elif len(pairs) > 1:
        problem = "holds more than one address"
    elif not address:
        problem = "is not an address"
    elif "<" in raw and not raw.rstrip().endswith(">"):
        problem = "has an unclosed '<'"
    else:
        from email_validator import EmailNotValidError, validate_email

        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            problem = str(exc)
    if problem:
        raise ConfigError(
            f'{where}: {raw!r}: {problem} (write "Name <news@example.org>" or "news@example.org")'
        )
    return name, address
