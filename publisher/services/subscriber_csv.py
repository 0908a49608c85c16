"""Subscriber CSV files (reads the file; no store): checked import rows and export rows.

Two shapes are read, told apart by the header:

- the list shape, one row per person: ``email[,name,digests,tags]`` where ``digests`` and
  ``tags`` are space-separated and an empty ``digests`` means every digest;
- the export shape, one row per subscription: ``email,name,status,digest,frequency,tags``.

``frequency`` and ``status`` may appear in either. The file is UTF-8 (with or without a
BOM) or UTF-16 with a BOM, unless ``--encoding`` says otherwise; anything else is one
error naming the file, before anything is written. Each physical line is parsed alone, so
an unclosed quote costs its own line, reported by number, and never swallows the rows
after it.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from publisher.compose.subscriptions import MAX_NAME, AddressCheck, clean_name, email_hash
from publisher.errors import SubscriberError

EXPORT_HEADER = ("email", "name", "status", "digest", "frequency", "tags")
IMPORT_STATUSES = ("active", "pending", "unsubscribed", "bounced")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CHUNK = 1 << 20
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class CsvFileError(SubscriberError):
    """The file as a whole cannot be read (its encoding, its header)."""


class ImportRow(NamedTuple):
    """One checked row: a normalized address, a clean name, digests, cadence, topics."""

    line: int
    email: str
    email_hash: str
    name: str
    status: str  # "" when the file has no status column
    digests: tuple[str, ...]
    frequency: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class RowError:
    """A row that is rejected, with its line number."""

    line: int
    message: str


def choose_encoding(path: Path, given: str | None) -> str:
    """The codec to read ``path`` with: ``given`` (a known codec name), else from its BOM,
    else strict UTF-8."""
    if given:
        name = codecs.lookup(given).name
        return "utf-8-sig" if name == "utf-8" else name  # utf-8-sig also reads no BOM
    with path.open("rb") as handle:
        head = handle.read(4096)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if b"\x00" in head:
        raise CsvFileError(
            f"{path}: looks like UTF-16 without a byte-order mark; save it as UTF-8, "
            "or pass --encoding utf-16-le (or utf-16-be)"
        )
    return "utf-8"


def count_rows(path: Path, encoding: str) -> int:
    """Decode the whole file once (so a wrong encoding fails before anything is written)
    and count its lines after the header."""
    lines = 0
    last = ""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n") + 1
                bad = chunk[exc.start : exc.start + 1].hex()
                raise CsvFileError(
                    f"{path}:{line}: not {encoding} (byte 0x{bad}); save the file as UTF-8, or "
                    "name its encoding with --encoding (Excel's CSV is often --encoding cp1252)"
                ) from exc
            lines += text.count("\n")
            if text:
                last = text[-1]
            if not chunk:
                break
    if last not in ("\n", ""):  # a last line without its line break
        lines += 1
    return max(0, lines - 1)


def _split(line: str) -> list[str]:
    # strict: an unclosed quote or text after a closing quote raises instead of guessing.
    return next(csv.reader((line,), strict=True), [])


def _header(path: Path, first: str) -> list[str]:
    try:
        fields = [f.strip().lower() for f in _split(first)]
    except csv.Error as exc:
        raise CsvFileError(f"{path}:1: the header row is not valid CSV ({exc})") from exc
    if "email" not in fields:
        raise CsvFileError(f"{path}:1: the header row has no 'email' column")
    return fields


def _name(raw: str) -> str:
    # Plain printable ASCII with no encoded word needs only the whitespace folding that
    # clean_name does; the full clean (NFC, XML-safe, encoded words) costs ten times more.
    if raw.isascii() and raw.isprintable() and "=?" not in raw:
        return " ".join(raw.split())[:MAX_NAME].rstrip()
    return clean_name(raw)


class RowReader:
    """Checks the cells of one row into an ImportRow (or raises SubscriberError)."""

    def __init__(self, digest_ids: Sequence[str], frequencies: Sequence[str]) -> None:
        self.digest_ids = tuple(digest_ids)
        self.frequencies = tuple(frequencies)
        self.address = AddressCheck()

    def digests(self, given: Sequence[str]) -> tuple[str, ...]:
        """The digests named (all when none); an unknown id is an error listing the known."""
        for digest_id in given:
            if digest_id not in self.digest_ids:
                known = ", ".join(self.digest_ids) or "none configured"
                raise SubscriberError(f"unknown digest {digest_id!r} (known: {known})")
        return tuple(dict.fromkeys(given)) or self.digest_ids

    def row(self, line: int, cells: dict[str, str]) -> ImportRow:
        """Check one row's cells."""
        email = self.address(cells.get("email", ""))
        named = (cells.get("digests", "") + " " + cells.get("digest", "")).split()
        frequency = cells.get("frequency", "").strip().lower() or self.frequencies[0]
        if frequency not in self.frequencies:
            raise SubscriberError(
                f"frequency {frequency!r} is not one of {', '.join(self.frequencies)}"
            )
        status = cells.get("status", "").strip().lower()
        if status and status not in IMPORT_STATUSES:
            raise SubscriberError(
                f"status {status!r} is not one of {', '.join(IMPORT_STATUSES)}"
            )
        return ImportRow(
            line=line,
            email=email,
            email_hash=email_hash(email),
            name=_name(cells.get("name", "")),
            status=status,
            digests=self.digests(named),
            frequency=frequency,
            tags=tuple(dict.fromkeys(cells.get("tags", "").replace(",", " ").split())),
        )


def read_rows(
    path: Path, encoding: str, reader: RowReader, on_line: Callable[[int], None] | None = None
) -> Iterator[ImportRow | RowError]:
    """Each data row of the file, checked, or the reason it is rejected (by line number)."""
    with path.open(encoding=encoding, newline="") as handle:
        lines = iter(handle)
        first = next(lines, "")
        fields = _header(path, first)
        width = len(fields)
        for number, text in enumerate(lines, start=2):
            if on_line is not None:
                on_line(1)
            if not text.strip():
                continue
            try:
                cells = _split(text)
            except csv.Error as exc:
                hint = "a quoted field is not closed on this line" if "end of data" in str(exc) else exc
                yield RowError(number, f"malformed CSV row: {hint}")
                continue
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                yield RowError(number, f"{len(cells)} fields, but the header has {width}")
                continue
            try:
                yield reader.row(number, dict(zip(fields, map(_uncell, cells), strict=False)))
            except SubscriberError as exc:
                yield RowError(number, str(exc))


# -- export ---------------------------------------------------------------------------------


def _cell(value: str) -> str:
    # A leading = + - @ or tab makes spreadsheets evaluate the cell as a formula.
    return "'" + value if value[:1] in _FORMULA else value


def _uncell(value: str) -> str:
    # Undo _cell: the quote that export put before a formula character is not data.
    return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA else value


def export_lines(rows: Iterator[Sequence[str]]) -> Iterator[str]:
    """CSV text in the export shape, one line at a time, safe to open in a spreadsheet."""
    return csv_lines(_with_header(rows))


def csv_lines(rows: Iterator[Sequence[str]]) -> Iterator[str]:
    """Each row as a line of CSV text, cells that a spreadsheet would run as a formula
    prefixed with a quote (the console's audit export writes its CSV with this too)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _with_header(rows: Iterator[Sequence[str]]) -> Iterator[Sequence[str]]:
    yield EXPORT_HEADER
    yield from rows
