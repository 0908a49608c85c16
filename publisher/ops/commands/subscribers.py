"""``publisher subscribers ...``: add, set, import, list, remove and export subscribers.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from publisher.compose import planning
from publisher.ops.common import (
    _app,
    _console,
)


@click.group()
def subscribers() -> None:
    """Add, change, import, list, remove and export subscribers."""


def _tags(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(dict.fromkeys(value.replace(",", " ").split()))


_FREQUENCY = click.Choice(planning.FREQUENCIES)
_TAGS_HELP = 'Topics, space- or comma-separated; "" clears them (every article of the digest).'


def _outcome(ctx: click.Context, outcome: Any) -> None:
    if outcome.ok:
        click.echo(outcome.line)
    else:
        click.echo(outcome.line, err=True)
        ctx.exit(1)


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name, used in the greeting.")
@click.option(
    "--digest",
    "digests",
    multiple=True,
    help="Digest id (repeatable). A new address gets every digest when none is given; an "
    "existing subscriber joins only the digests given.",
)
@click.option(
    "--frequency",
    type=_FREQUENCY,
    default=None,
    help="How often they get these digests: every issue, or one daily/weekly roll-up.",
)
@click.option("--tags", callback=_tags, default=None, help=_TAGS_HELP)
@click.option(
    "--reactivate",
    is_flag=True,
    help="Subscribe again an address that bounced, unsubscribed, complained or was erased "
    "(only when they asked to come back).",
)
@click.pass_context
def subscribers_add(
    ctx: click.Context,
    email: str,
    name: str,
    digests: tuple[str, ...],
    frequency: str | None,
    tags: tuple[str, ...] | None = None,
    reactivate: bool = False,
) -> None:
    """Add EMAIL as an active subscriber (you vouch for their consent).

    Prints one line: added, already subscribed, joined DIGEST, reactivated, or refused.
    An existing subscriber joins the --digest given and keeps the others; with no --digest
    nothing is joined, and --frequency/--tags change their current subscriptions. A
    bounced, unsubscribed, erased or complaining address is refused (exit 1) unless you
    pass --reactivate. To change settings only, use `subscribers set`.
    """
    from publisher.services.subscribers import add

    app = _app(ctx)
    outcome = add(
        app,
        email,
        name=name.strip(),
        digests=digests,
        frequency=frequency,
        tags=tags,
        reactivate=reactivate,
    )
    _outcome(ctx, outcome)


@subscribers.command("set")
@click.argument("email")
@click.option("--digest", default=None, help="Change only this subscription (default: all of them).")
@click.option("--frequency", type=_FREQUENCY, default=None, help="every, daily or weekly.")
@click.option("--tags", callback=_tags, default=None, help=_TAGS_HELP)
@click.option("--name", default=None, help="New display name.")
@click.pass_context
def subscribers_set(
    ctx: click.Context,
    email: str,
    digest: str | None,
    frequency: str | None,
    tags: tuple[str, ...] | None,
    name: str | None,
) -> None:
    """Change EMAIL's frequency, topics or name: only what is given.

    Never joins or leaves a digest (that is `add --digest` / `remove --digest`) and never
    changes the status. Example: `publisher subscribers set ana@example.org --digest daily
    --frequency weekly`; `--tags ""` clears the topics.
    """
    from publisher.services.subscribers import change

    if frequency is None and tags is None and name is None:
        raise click.UsageError("nothing to change: give --frequency, --tags or --name")
    app = _app(ctx)
    _outcome(
        ctx,
        change(
            app,
            email,
            digest=digest,
            frequency=frequency,
            tags=tags,
            name=None if name is None else name.strip(),
        ),
    )


def _encoding(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    import codecs

    if value is None:
        return None
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise click.BadParameter(f"{value!r} is not an encoding Python knows") from None


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--pending",
    is_flag=True,
    help="Import new addresses as pending and email each one a confirmation link (double opt-in).",
)
@click.option(
    "--encoding",
    callback=_encoding,
    metavar="CODEC",
    help="The file's encoding when it is not UTF-8 or UTF-16 with a BOM, e.g. cp1252 or "
    "latin-1 for a CSV saved by Excel.",
)
@click.pass_context
def subscribers_import(
    ctx: click.Context, csv_file: Path, pending: bool = False, encoding: str | None = None
) -> None:
    """Import subscribers from CSV_FILE.

    \b
    Two shapes, told apart by the header row:
      email[,name,digests,tags]                  one row per person
      email,name,status,digest,frequency,tags    one row per subscription (what export writes)

    digests and tags are space-separated; no digest means every digest; frequency is every,
    daily or weekly. The file is UTF-8 (with or without a BOM) or UTF-16 with a BOM; name
    any other encoding with --encoding.

    Rows are active at once (you vouch for their consent), or keep the status column's
    unsubscribed/bounced; with --pending, new addresses are pending and each gets a
    confirmation email, and only those who confirm receive digests. Existing addresses are
    left as they are, so an import never re-subscribes someone who left, and suppressed
    addresses (erased at their owner's request, or who complained) are refused. Bad rows
    (an invalid address, an unknown digest, an unclosed quote, too many fields) are
    reported by line and skipped; the exit code is then 1.
    """
    from publisher.ops.progress import bar
    from publisher.services.subscribers import import_csv

    app = _app(ctx)
    with contextlib.ExitStack() as stack:

        def start(rows: int) -> Any:
            return stack.enter_context(bar("importing", rows))

        report = import_csv(app, csv_file, encoding=encoding, pending=pending, on_start=start)
    for line, message in report.errors:
        click.echo(f"skipped: {csv_file}:{line}: {message}", err=True)
    state = "pending (confirmation sent)" if pending else "new"
    kept = f" ({report.kept_status} kept as unsubscribed, bounced or pending)" if report.kept_status else ""
    click.echo(
        f"imported {report.added} {state}{kept}, {report.present} already present, "
        f"{len(report.errors)} rejected"
    )
    if report.errors:
        ctx.exit(1)


@subscribers.command("list")
@click.option(
    "--status", type=click.Choice(["active", "pending", "unsubscribed", "bounced", "erased"])
)
@click.pass_context
def subscribers_list(ctx: click.Context, status: str | None) -> None:
    """List subscribers: one row per subscription, with its frequency and topics.

    A suppressed address shows its reason beside the status, e.g. "unsubscribed
    (complaint)". Erased subscribers are listed only with --status erased.
    """
    from rich.table import Table

    from publisher.compose.subscriptions import email_hash

    app = _app(ctx)
    suppressed = app.store.suppressed_reasons()
    table = Table("email", "name", "status", "digest", "frequency", "topics", "since")
    people: set[int] = set()
    rows = 0
    for row in app.store.subscription_listing(status):
        if row.status == "erased" and status != "erased":
            continue
        reason = suppressed.get(email_hash(row.email)) if suppressed else None
        table.add_row(
            row.email,
            row.name,
            f"{row.status} ({reason})" if reason else row.status,
            row.digest_id or "-",
            row.frequency or "-",
            " ".join(row.tags) or ("all" if row.digest_id else "-"),
            f"{row.created_at:%Y-%m-%d}",
        )
        people.add(row.subscriber_id)
        rows += row.digest_id is not None
    _console().print(table)
    counts = app.store.suppression_counts()
    listed = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    click.echo(
        f"{len(people)} subscriber(s), {rows} subscription(s)"
        + (f"; suppressed addresses: {listed}" if listed else "")
    )


@subscribers.command("remove")
@click.argument("email")
@click.option("--digest", default=None, help="Leave only this digest (leaving the last is leaving).")
@click.option(
    "--complaint",
    is_flag=True,
    help="They complained (marked our mail as spam): also suppress the address, so add and "
    "import refuse it without --reactivate.",
)
@click.pass_context
def subscribers_remove(
    ctx: click.Context, email: str, digest: str | None = None, complaint: bool = False
) -> None:
    """Unsubscribe EMAIL from everything (or --digest); queued messages to them are skipped.

    The row is kept (status unsubscribed) for the delivery history, and so that a later
    import does not add the address back.
    """
    from publisher.services.subscribers import remove

    if digest and complaint:
        raise click.UsageError("--complaint leaves every digest; drop --digest")
    app = _app(ctx)
    _outcome(ctx, remove(app, email, digest=digest, complaint=complaint))


@subscribers.command("export")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default stdout)."
)
@click.pass_context
def subscribers_export(ctx: click.Context, out: Path | None) -> None:
    """Export as CSV, one row per subscription: email,name,status,digest,frequency,tags.

    `subscribers import` reads this shape back (frequency and topics included). Cells a
    spreadsheet would run as a formula are prefixed with a quote. Erased subscribers are
    left out.
    """
    from publisher.services.subscriber_csv import export_lines

    app = _app(ctx)
    rows = (
        (r.email, r.name, r.status, r.digest_id or "", r.frequency or "", " ".join(r.tags))
        for r in app.store.subscription_listing()
        if r.status != "erased"
    )
    if out is None:
        for line in export_lines(rows):
            sys.stdout.write(line)
        return
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(export_lines(rows))
    tmp.replace(out)
