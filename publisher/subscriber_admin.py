"""The operator's subscriber management (store and file I/O): import, add, set, remove.

What the ``publisher subscribers`` commands do, apart from printing. Each function returns
what it did in words the command prints as is. The rules that protect people on the list:

- an import never changes an address already in the store, and refuses suppressed ones;
- ``add`` never brings back a bounced, unsubscribed, erased or complaining address unless
  the operator passes ``reactivate`` (they asked to come back);
- ``set`` changes only what it is given, and never joins a digest or reactivates anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from publisher import planning, subscriber_csv
from publisher.errors import PublisherError, SubscriberError
from publisher.models import Subscriber
from publisher.pipeline import App
from publisher.store.roster import ImportGroup, NewSubscription, Suppression
from publisher.subscriptions import AddressCheck, email_hash

BATCH_ROWS = 5000
LEFT = ("bounced", "unsubscribed")


@dataclass
class ImportReport:
    """What an import did: new addresses, addresses already there, rows rejected by line."""

    added: int = 0
    present: int = 0
    subscriptions: int = 0
    kept_status: int = 0  # new rows imported as unsubscribed/bounced/pending, as the file said
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)


def refusal(address: str, suppression: Suppression) -> str:
    """Why a suppressed address is refused, in one clause."""
    when = f"{suppression.created_at:%Y-%m-%d}"
    if suppression.reason == "erased":
        return f"{address} asked for their data to be erased ({when})"
    return f"{address} complained about our mail ({when})"


def _cadence(app: App) -> dict[tuple[str, str], tuple[int, str | None]]:
    """Where a new daily/weekly subscription of each digest starts (see cadence.py)."""
    now = app.clock()
    cursors = app.store.cadence_cursors([d.id for d in app.config.digests])
    starts: dict[tuple[str, str], tuple[int, str | None]] = {}
    for digest in app.config.digests:
        for frequency in planning.FREQUENCIES[1:]:
            closing = planning.closing_fire(digest, frequency, now)
            key = None if closing is None else planning.cadence_key(digest, closing, frequency)
            starts[(digest.id, frequency)] = (cursors[digest.id], key)
    return starts


def _group(rows: Iterable[subscriber_csv.ImportRow]) -> list[ImportGroup]:
    """Rows of one batch by address, in order; the first row gives name and status."""
    groups: dict[str, ImportGroup] = {}
    for row in rows:
        group = groups.get(row.email)
        if group is None:
            group = groups[row.email] = ImportGroup(
                row.email, row.email_hash, row.name, row.status or "active", [], []
            )
        group.lines.append(row.line)
        group.subscriptions.extend(
            NewSubscription(d, row.frequency, row.tags) for d in row.digests
        )
    return list(groups.values())


def import_csv(
    app: App,
    path: Path,
    *,
    encoding: str | None = None,
    pending: bool = False,
    on_start: Callable[[int], Callable[[int], None]] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """Import a subscriber CSV file in batches; see :mod:`publisher.subscriber_csv`.

    ``on_start(rows)`` is called once the file is known to decode, and returns the progress
    callback (advanced once per line).
    """
    codec = subscriber_csv.choose_encoding(path, encoding)
    total = subscriber_csv.count_rows(path, codec)
    advance = on_start(total) if on_start else None
    reader = subscriber_csv.RowReader([d.id for d in app.config.digests], planning.FREQUENCIES)
    report = ImportReport()
    write = _pending_writer(app, report) if pending else _batch_writer(app, report)
    batch: list[subscriber_csv.ImportRow] = []
    try:
        for item in subscriber_csv.read_rows(path, codec, reader, advance):
            if isinstance(item, subscriber_csv.RowError):
                report.errors.append((item.line, item.message))
                continue
            batch.append(item)
            if len(batch) >= batch_rows:
                write(batch)
                batch = []
        if batch:
            write(batch)
    finally:
        write([])  # closes what the writer opened
    report.errors.sort()
    return report


def _batch_writer(app: App, report: ImportReport) -> Callable[[list[subscriber_csv.ImportRow]], None]:
    now = app.clock()
    cadence = _cadence(app)
    created_here: set[str] = set()

    def write(rows: list[subscriber_csv.ImportRow]) -> None:
        if not rows:
            return
        groups = _group(rows)
        result = app.store.import_batch(groups, created_here, now, cadence)
        created = set(result.created)
        created_here.update(created)
        report.added += len(created)
        report.present += len(result.present)
        report.subscriptions += result.subscriptions
        report.kept_status += sum(1 for g in groups if g.status != "active" and g.email in created)
        for line, address, suppression in result.refused:
            report.errors.append((line, f"{refusal(address, suppression)}; it is not imported"))

    return write


def _pending_writer(app: App, report: ImportReport) -> Callable[[list[subscriber_csv.ImportRow]], None]:
    from publisher import signup

    opened: list = []

    def write(rows: list[subscriber_csv.ImportRow]) -> None:
        if not rows:
            for transport in opened:
                transport.close()
            opened.clear()
            return
        for group in _group(rows):
            if group.status not in ("active", "pending"):
                report.errors.extend(
                    (line, f"status {group.status}: not asked to confirm") for line in group.lines
                )
                continue
            suppressed = app.store.suppression(group.email_hash)
            if suppressed is not None:
                report.errors.extend(
                    (line, f"{refusal(group.email, suppressed)}; it is not imported")
                    for line in group.lines
                )
                continue
            if app.store.find_subscriber(group.email) is not None:
                report.present += 1
                continue
            if not opened:
                transport = app.new_transport()
                transport.open()
                opened.append(transport)
            digests = list(dict.fromkeys(s.digest_id for s in group.subscriptions))
            tags = list(dict.fromkeys(t for s in group.subscriptions for t in s.tags))
            try:
                signup.request(app, opened[0], group.email, group.name, digests, tags)
            except PublisherError as exc:
                report.errors.extend((line, str(exc)) for line in group.lines)
                continue
            report.added += 1

    return write
