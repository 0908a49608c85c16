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
from datetime import datetime
from pathlib import Path
from typing import Any

from publisher.app import App
from publisher.compose import planning
from publisher.compose.subscriptions import AddressCheck, email_hash
from publisher.errors import PublisherError, SubscriberError
from publisher.models import Subscriber
from publisher.services import guard, subscriber_csv
from publisher.store.roster import ImportGroup
from publisher.store.suppressions import Suppression

BATCH_ROWS = 5000
ANALYZE_AFTER = 10_000  # new subscribers that make fresh planner statistics worth it
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
        frequency, tags = row.frequency, row.tags
        group.subscriptions.extend([(d, frequency, tags) for d in row.digests])
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
    """Import a subscriber CSV file in batches; see :mod:`publisher.services.subscriber_csv`.

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
    if report.added >= ANALYZE_AFTER:
        app.store.analyze_subscribers()
    report.errors.sort()
    return report


def _batch_writer(app: App, report: ImportReport) -> Callable[[list[subscriber_csv.ImportRow]], None]:
    now = app.clock()
    cadence = _cadence(app)
    created_here: set[str] = set()
    present: set[str] = set()  # counted once, though their rows may span batches

    def write(rows: list[subscriber_csv.ImportRow]) -> None:
        if not rows:
            return
        groups = _group(rows)
        result = app.store.import_batch(groups, created_here, now, cadence)
        created = set(result.created)
        created_here.update(created)
        report.added += len(created)
        fresh = set(result.present) - present
        present.update(fresh)
        report.present += len(fresh)
        report.subscriptions += result.subscriptions
        report.kept_status += sum(1 for g in groups if g.status != "active" and g.email in created)
        for line, address, suppression in result.refused:
            report.errors.append((line, f"{refusal(address, suppression)}; it is not imported"))

    return write


def _pending_writer(app: App, report: ImportReport) -> Callable[[list[subscriber_csv.ImportRow]], None]:
    from publisher.services import signup

    opened: list[Any] = []

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
            digests = list(dict.fromkeys(s[0] for s in group.subscriptions))
            tags = list(dict.fromkeys(t for s in group.subscriptions for t in s[2]))
            try:
                signup.request(
                    app, opened[0], group.email, group.name, digests, tags, source="import"
                )
            except PublisherError as exc:
                report.errors.extend((line, str(exc)) for line in group.lines)
                continue
            report.added += 1

    return write


# -- add, set, remove --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One line saying what a command did; ``ok`` false when it refused."""

    line: str
    ok: bool = True


def _describe(app: App, subscriber_id: int, digest_ids: Sequence[str] | None = None) -> str:
    """``daily (weekly; topics: research), news (every)`` for these subscriptions."""
    parts = []
    for row in app.store.subscription_rows(subscriber_id):
        if digest_ids is None or row["digest_id"] in digest_ids:
            topics = f"; topics: {' '.join(row['tags'])}" if row["tags"] else ""
            parts.append(f"{row['digest_id']} ({row['frequency']}{topics})")
    return ", ".join(parts) or "no digests"


def _apply(
    app: App,
    subscriber_id: int,
    digest_ids: Sequence[str],
    frequency: str | None,
    tags: Sequence[str] | None,
) -> None:
    from publisher.services.cadence import set_frequency

    if frequency and digest_ids:
        set_frequency(app, subscriber_id, list(digest_ids), frequency)
    if tags is not None and digest_ids:
        app.store.set_tags(subscriber_id, digest_ids, tags)


def add(
    app: App,
    email: str,
    *,
    name: str = "",
    digests: Sequence[str] = (),
    frequency: str | None = None,
    tags: Sequence[str] | None = None,
    reactivate: bool = False,
    source: str = "cli",
) -> Outcome:
    """Subscribe ``email`` to ``digests`` (a new address: every digest when none given).

    An existing subscriber joins the digests named and keeps the others; without digests
    named nothing is joined. A bounced, unsubscribed or suppressed (erased, complaint)
    address is refused unless ``reactivate``; a pending one is activated (you vouch).
    ``source`` (cli, api, console) is recorded with any status change.
    """
    address = AddressCheck()(email)
    all_ids = [d.id for d in app.config.digests]
    for digest_id in digests:
        app.config.digest(digest_id)
    now = app.clock()
    hashed = email_hash(address)
    suppressed = app.store.suppression(hashed)
    existing = app.store.find_subscriber(address)
    left = existing.status if existing is not None and existing.status in LEFT else None
    if (suppressed or left) and not reactivate:
        why = refusal(address, suppressed) if suppressed else f"{address} is {left}"
        return Outcome(
            f"refused: {why}; pass --reactivate if they asked to be subscribed again", ok=False
        )
    notes = []
    if suppressed is not None:
        app.store.lift_suppression(hashed)
        notes.append(f"suppression ({suppressed.reason}) lifted")
    if existing is None:
        targets = list(digests) or all_ids
        sub, _ = app.store.add_subscriber(
            address, name, targets, now, tags=tags or (), source=source
        )
        _apply(app, sub.id, targets, frequency, None)
        extra = f" ({'; '.join(notes)})" if notes else ""
        return Outcome(f"added {address} to {_describe(app, sub.id)}{extra}")
    sub = _join(app, existing, name, digests, frequency, tags, now, notes, source)
    extra = f" ({'; '.join(notes[1:])})" if notes[1:] else ""
    return Outcome(f"{address}: {notes[0]}{extra}; now in {_describe(app, sub.id)}")


def _join(
    app: App,
    existing: Subscriber,
    name: str,
    digests: Sequence[str],
    frequency: str | None,
    tags: Sequence[str] | None,
    now: datetime,
    notes: list[str],
    source: str = "cli",
) -> Subscriber:
    """Bring an existing subscriber into ``digests``; notes[0] becomes the verb."""
    verb = "already subscribed"
    before = _describe(app, existing.id)
    if existing.status != "active":
        app.store.reactivate(existing.id, now, source=source)
        verb = f"reactivated (was {existing.status})"
    joined = [d for d in digests if d not in existing.digests]
    if joined:
        app.store.add_subscriber(
            existing.email, name, joined, now, tags=tags or (), source=source
        )
        verb = f"joined {' '.join(joined)}" if verb == "already subscribed" else verb
    elif name and name != existing.name:
        app.store.set_name(existing.id, name, now)
    # Settings given for digests they already had change those subscriptions, as asked.
    targets = list(digests) or list(existing.digests)
    _apply(app, existing.id, [d for d in targets if d not in joined], frequency, tags)
    _apply(app, existing.id, joined, frequency, None)
    if verb == "already subscribed" and _describe(app, existing.id) != before:
        verb = "updated"
    notes.insert(0, verb)
    sub = app.store.subscriber_by_id(existing.id)
    assert sub is not None
    return sub


def change(
    app: App,
    email: str,
    *,
    digest: str | None = None,
    frequency: str | None = None,
    tags: Sequence[str] | None = None,
    name: str | None = None,
) -> Outcome:
    """Change only what is given, on every subscription of ``email`` or only ``digest``.

    Never joins a digest (that is ``add --digest``) and never changes the status.
    """
    address = AddressCheck()(email)
    sub = app.store.find_subscriber(address)
    if sub is None:
        raise SubscriberError(f"no subscriber with address {address!r}")
    if digest is not None:
        app.config.digest(digest)
        if digest not in sub.digests:
            raise SubscriberError(
                f"{address} is not subscribed to {digest!r}; join with "
                f"`publisher subscribers add {address} --digest {digest}`"
            )
    targets = [digest] if digest else list(sub.digests)
    if (frequency or tags is not None) and not targets:
        raise SubscriberError(f"{address} has no subscriptions to change")
    if name is not None:
        app.store.set_name(sub.id, name, app.clock())
    _apply(app, sub.id, targets, frequency, tags)
    status = "" if sub.status == "active" else f" [status {sub.status}: they get nothing]"
    shown = f"name {name!r}, " if name is not None else ""
    return Outcome(f"set {address}: {shown}{_describe(app, sub.id, targets)}{status}")


def remove(
    app: App,
    email: str,
    *,
    digest: str | None = None,
    complaint: bool = False,
    source: str = "cli",
    note: str = "subscribers remove --complaint",
) -> Outcome:
    """Unsubscribe from one digest or everything; a complaint also suppresses the address.

    ``source`` (cli, api, console) is recorded with the change; a complaint is recorded as
    ``complaint``; ``note`` is kept with the suppression (where the complaint came from).
    """
    address = AddressCheck()(email)
    now = app.clock()
    sub = app.store.find_subscriber(address)
    if complaint:
        app.store.suppress(email_hash(address), "complaint", now, note=note)
    if sub is None:
        if complaint:
            return Outcome(f"suppressed {address} (complaint); it was not on the list")
        raise SubscriberError(f"no subscriber with address {address!r}")
    if digest is not None:
        app.config.digest(digest)
        if digest not in sub.digests:
            raise SubscriberError(f"{address} is not subscribed to {digest!r}")
    after = app.store.unsubscribe(
        sub.id, digest, now, source="complaint" if complaint else source
    )
    assert after is not None
    if complaint:  # the issues that reached them may now pass pause_complaint_rate
        guard.after_signal(app, sub.id)
    where = f"from {digest}" if digest else "from every digest"
    rest = f"; still in {_describe(app, sub.id)}" if after.digests and digest else ""
    tail = "; suppressed (complaint): add and import refuse it" if complaint else ""
    return Outcome(f"removed {address} {where} (status {after.status}){rest}{tail}")
