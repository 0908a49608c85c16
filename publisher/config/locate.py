"""Where a key sits in config.toml, for error messages: ``file:line: key.path`` (pure: no I/O).

Every configuration error starts with :func:`where`, so an operator can go straight to the
line; :func:`unknown_key` adds the "did you mean" hint for a misspelt key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path

KeyPath = tuple[str | int, ...]


class Locator:
    """Finds the line of a key path in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, path: KeyPath) -> int | None:
        """Return the 1-based line of ``path`` (section, [index], key), if it can be found."""
        if not path:
            return None
        section = str(path[0])
        rest = path[1:]
        index = 0
        if rest and isinstance(rest[0], int):
            index, rest = rest[0], rest[1:]
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        start = None
        for number, text in enumerate(self.lines):
            if header.match(text):
                seen += 1
                if seen == index:
                    start = number
                    break
        if start is None:
            return None
        if not rest:
            return start + 1
        key = re.compile(rf"^\s*\"?{re.escape(str(rest[0]))}\"?\s*=")
        for number in range(start + 1, len(self.lines)):
            text = self.lines[number]
            if re.match(r"^\s*\[", text):
                break
            if key.match(text):
                return number + 1
        return start + 1


def where(file: Path, locator: Locator, path: KeyPath) -> str:
    """``config.toml:14: digests[0].schedule`` (without the line when it cannot be found)."""
    dotted = ""
    for part in path:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else part)
    line = locator.line(path)
    return f"{file.name}:{line}: {dotted}" if line else f"{file.name}: {dotted}"


def unknown_key(name: str, known: Iterable[str]) -> str:
    """``unknown key 'limt' (did you mean 'limit'?)``: the hint only when one is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"unknown key {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
