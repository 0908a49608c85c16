"""The ``publisher`` command (terminal I/O). Each command's docstring is its --help text.

Exit codes: 0 ok, 1 an operational error (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from email_validator import EmailNotValidError, validate_email
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from publisher import __version__, pipeline, planning
from publisher import config as config_module
from publisher.errors import PublisherError, SubscriberError
from publisher.models import SendReport
from publisher.store import Store, translate


class _Group(click.Group):
    """Turns PublisherError (and database errors) into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            raise click.ClickException(str(exc)) from exc
        except SQLAlchemyError as exc:
            raise click.ClickException(str(translate(exc))) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file. Default: $PUBLISHER_CONFIG, else ./config.toml.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="Log lines on stderr: human-readable, or one JSON object per line for log shippers.",
)
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, log_format: str = "human") -> None:
    """Collect articles, write RSS/Atom/JSON feeds, and send email digests.

    Everything is configured in config.toml; see README.md for every key.
    """
    from publisher import logs

    logs.setup(log_format, logging.WARNING - 10 * min(verbose, 2))
    ctx.obj = config_path or config_module.default_path()


def _config(ctx: click.Context) -> config_module.Config:
    return config_module.load(ctx.find_root().obj)


# Commands that only read: a SQLite store that does not exist is an error naming the path,
# never a new empty database (and folders) made from a typo in [store] url.
_READ_ONLY = {
    ("status",), ("check",), ("preview",), ("issues", "list"), ("issues", "show"),
    ("subscribers", "list"), ("subscribers", "export"),
}  # fmt: skip


def _reads_only(ctx: click.Context) -> bool:
    names: list[str] = []
    node: click.Context | None = ctx
    while node is not None and node.parent is not None:
        names.insert(0, node.info_name or "")
        node = node.parent
    return tuple(names) in _READ_ONLY or (names == ["send"] and bool(ctx.params.get("dry_run")))


def _app(ctx: click.Context) -> pipeline.App:
    app = pipeline.open_app(_config(ctx), create=not _reads_only(ctx))
    ctx.call_on_close(app.store.close)
    return app


def _console() -> Console:
    # Off a terminal rich would wrap tables at 80 columns; logs and pipes want whole rows.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- collect / feeds -------------------------------------------------------------------


def _print_collect(report: Any) -> None:
    click.echo(
        f"collect   {report.new} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.errors)} error(s)"
    )
    for error in report.errors:
        click.echo(f"  skipped: {error}", err=True)


def _print_feeds(report: pipeline.FeedsReport) -> None:
    if report.written:
        names = ", ".join(_rel(p) for p in report.written[:6])
        more = f" and {len(report.written) - 6} more" if len(report.written) > 6 else ""
        click.echo(f"feeds     wrote {names}{more} ({report.entries} entries)")
    else:
        click.echo(
            f"feeds     {len(report.unchanged)} file(s) already up to date ({report.entries} entries)"
        )
    if report.websub:
        click.echo(f"websub    {report.websub}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Pull new and edited articles from every [[sources]] entry into the store.

    A broken file is reported with its path and reason and skipped; the rest are stored.
    Titles, authors and tags are stored as plain text: markup is stripped, its text kept.
    Everything that can be collected is; the exit code is then 1 when a file was skipped
    or a source failed (`publisher status` shows failing sources). On a terminal, a
    progress bar counts the sources done.
    """
    from publisher.progress import bar

    app = _app(ctx)
    with bar("collecting", len(app.config.sources)) as advance:
        report = pipeline.collect(app, on_source=advance)
    _print_collect(report)
    if report.failed_sources:
        click.echo(
            f"failed    source(s) {', '.join(report.failed_sources)} could not be read "
            "(see `publisher status`)",
            err=True,
        )
    if not report.ok:
        ctx.exit(1)


@cli.command()
@click.option(
    "--force", is_flag=True, help="Rebuild every file, not only those whose inputs changed."
)
@click.pass_context
def feeds(ctx: click.Context, force: bool) -> None:
    """Write the RSS, Atom and JSON feeds into [feeds] output_dir (only files that changed).

    Also per-tag and per-author feeds, archive pages, feeds.opml and index.html as
    configured, and a WebSub ping when feeds changed. A failing hub never fails the
    build: it is warned about once per run of failures, then noted when it recovers.
    """
    _print_feeds(pipeline.write_feeds(_app(ctx), force=force))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web endpoints until interrupted (behind your HTTPS reverse proxy).

    Subscribers: /subscribe (double opt-in), /confirm/TOKEN, /unsubscribe/TOKEN (RFC 8058
    one-click POST), /preferences/TOKEN (digests, frequency, topics, export, erasure).
    Readers: the feeds under /feeds/ and the issue archive under /archive/, with their
    media types, ETag and Last-Modified (304 on a conditional GET) and gzip.
    """
    import uvicorn

    from publisher.web import create_app

    app = _app(ctx)
    uvicorn.run(create_app(app.config, app=app), host=host, port=port, log_level="info")


# -- digests ---------------------------------------------------------------------------


def held_text(app: pipeline.App, digest_id: str, held: int, until: datetime | None) -> str:
    """``N held until HH:MM (send_window)``, the time local to the digest."""
    if not held or until is None:
        return ""
    try:
        tz = ZoneInfo(app.config.digest(digest_id).timezone)
    except PublisherError:  # an issue of a digest no longer in the config
        tz = ZoneInfo("UTC")
    # A window opens within a day, so the local time of day says when.
    return f"{held} held until {until.astimezone(tz):%H:%M} (send_window)"


def _print_send(app: pipeline.App, report: SendReport) -> None:
    held = held_text(app, report.digest_id, report.held, report.held_until)
    if report.issue is None:
        click.echo(f"{report.digest_id:<9} {report.note}" + (f"; {held}" if held else ""))
        return
    issue = report.issue
    where = app.config.delivery.transport
    target = (
        _rel(app.config.delivery.outbox_dir) + "/"
        if where == "file"
        else ", ".join(f"{r.host}:{r.port}" for r in app.config.relay_list)
    )
    head = f"{report.digest_id:<9} issue {issue.period} (#{issue.id}, {len(issue.article_ids)} article(s)): "
    if report.queued_only:
        line = head + f"{report.planned} queued for `publisher worker`"
        click.echo(line + (f", {held}" if held else ""))
        return
    line = head + f"{report.sent} sent, {report.failed} failed"
    if report.bounced:
        line += f", {report.bounced} bounced"
    if report.retrying:
        line += f", {report.retrying} to retry"
    if report.released:
        line += f", {report.released} left queued"
    if report.recovered:
        line += f", {report.recovered} resent after a crash (possible duplicates)"
    if held:
        line += f", {held}"
    if report.lost:
        line += f", {report.lost} lost to a takeover while this process was stopped"
    taken = sum(h.count for h in report.held_by)
    if taken:
        line += f", {taken} still held by other workers"
    if report.note:
        line += f" [{report.note}]"
    if taken:
        line += " [not done]"
    if report.sent:
        line += f" -> {target}"
    click.echo(line)
    now = app.clock()
    for holding in report.held_by:
        click.echo(f"held      {holding.describe(now)}")


@cli.command()
@click.argument("digest")
@click.option("--dry-run", is_flag=True, help="Count what a send would queue and list its roll-ups; write and send nothing.")
@click.option("--to", "to", metavar="EMAIL", help="Send one [TEST] copy of the next issue to EMAIL; record nothing.")
@click.option("--queue-only", is_flag=True, help="Create the issue and queue its deliveries; `publisher worker` sends them.")
@click.pass_context
def send(ctx: click.Context, digest: str, dry_run: bool, to: str | None, queue_only: bool = False) -> None:
    """Create DIGEST's issue for the current period (if it has new articles) and deliver it.

    The period is the digest's latest scheduled time at or before now. Running send
    again in the same period sends nothing; queued retries of earlier issues are resumed.
    Messages held by the digest's send_window are reported as "N held until HH:MM".
    --dry-run writes nothing and counts with the same query a real send plans with
    (topics, cadence, quiet hours), listing the roll-up issues it would create.
    --queue-only prints how many deliveries it queued. With --to, one test copy (subject prefixed [TEST]) goes to that address through the
    configured transport, and neither an issue nor a delivery is recorded.
    """
    app = _app(ctx)
    if to:
        preview = pipeline.send_test(app, digest, normalize_email(to))
        click.echo(f"test      {preview.label}: [TEST] {preview.rendered.subject!r} sent to {to}")
        return
    from publisher.progress import attached
    from publisher.worker import stop_on_signals

    # SIGTERM/SIGINT: finish the messages in flight, record them, leave the rest queued, exit 0.
    with stop_on_signals() as stop, attached(app, sys.stderr), _registered(app, "send", dry_run or queue_only):
        reports = pipeline.send_digest(app, digest, dry_run=dry_run, stop=stop, queue_only=queue_only)
    for report in reports:
        _print_send(app, report)
    if stop.is_set():
        click.echo("stopped   by a signal; the rest stays queued for the next run", err=True)


@contextmanager
def _registered(app: pipeline.App, command: str, skip: bool) -> Iterator[None]:
    """Register the process as a sender for the block, unless it will send nothing."""
    if skip:
        yield
        return
    with pipeline.sender_session(app, command):
        yield


@cli.command()
@click.option("--until-idle", is_flag=True, help="Exit when nothing is due instead of waiting for more.")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds between looks for new work when idle.")
@click.pass_context
def worker(ctx: click.Context, until_idle: bool, poll: float) -> None:
    """Send the queued deliveries of every open issue, of every digest, until SIGTERM.

    Run as many workers as you like, on as many hosts, against one PostgreSQL store:
    batches are claimed with FOR UPDATE SKIP LOCKED, so each message goes out once.
    The limits hold for all of them together (they live in the store): [delivery]
    rate_limit, each relay's rate, [delivery.domains] pacing and "slow down" pauses. A
    relay that keeps failing is marked unhealthy for every worker; mail moves to the next.
    """
    from publisher.progress import attached
    from publisher.worker import run_worker, stop_on_signals

    app = _app(ctx)
    logging.getLogger("publisher").setLevel(logging.INFO)
    with stop_on_signals() as stop, attached(app, sys.stderr), pipeline.sender_session(app, "worker"):
        report = run_worker(app, stop, until_idle=until_idle, poll_seconds=poll)
    line = (
        f"worker    {report.sent} sent, {report.failed} failed, {report.bounced} bounced, "
        f"{report.retrying} to retry, over {len(report.issues)} issue(s)"
    )
    if report.recovered:
        line += f"; {report.recovered} resent after a crash (possible duplicates)"
    if report.lost:
        line += f"; {report.lost} lost to a takeover while this process was stopped"
    click.echo(line)
    now = app.clock()
    for issue_id, held in sorted(report.held.items()):
        for holding in held:
            click.echo(f"held      issue #{issue_id}: {holding.describe(now)}")


@cli.command()
@click.argument("digest")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default preview-DIGEST.html or .txt).")
@click.option("--text", "as_text", is_flag=True, help="Write the plain-text part instead of the HTML.")
@click.option("--subscriber", metavar="EMAIL", help="Personalise for this subscriber (real signed links).")
@click.option("--open", "open_browser", is_flag=True, help="Open the result in the default browser.")
@click.pass_context
def preview(
    ctx: click.Context, digest: str, out: Path | None, as_text: bool, subscriber: str | None, open_browser: bool
) -> None:
    """Render DIGEST's next issue exactly as it would be sent; nothing is stored or sent.

    When there are no new articles, the latest issue is rendered instead.
    """
    app = _app(ctx)
    result = pipeline.preview_issue(app, digest)
    person = pipeline.preview_personal(app, result, normalize_email(subscriber) if subscriber else None)
    html_part, text_part = pipeline.personalized_parts(result, person)
    out = out or Path(f"preview-{digest}.{'txt' if as_text else 'html'}")
    out.write_text(text_part if as_text else html_part, encoding="utf-8")
    click.echo(
        f"preview   {result.label}: {len(result.articles)} article(s), "
        f"subject {result.rendered.subject!r} -> {_rel(out.resolve())}"
    )
    if open_browser:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())


@cli.command()
@click.option("--once", is_flag=True, help="Run one cycle (collect, feeds, due digests) and exit.")
@click.option(
    "--collect-every",
    metavar="DURATION",
    default=None,
    help="Daemon only: time between collect + feeds runs, such as 90s, 15m or 2h "
    "(overrides [schedule] collect_every; a bare number means minutes).",
)
@click.pass_context
def run(ctx: click.Context, once: bool, collect_every: str | None) -> None:
    """Collect, write feeds and send every due digest.

    With --once: one cycle, a summary, then exit (non-zero if a digest failed). Without:
    a daemon that schedules each digest's cron in its time zone (read as crontab reads
    it: 0 and 7 are Sunday) until SIGTERM/SIGINT. At start it sends each digest's latest
    period if it fired within [schedule] catch_up, and logs every job's next fire time;
    SIGTERM finishes the current step and exits 0.
    """
    app = _app(ctx)
    if not once:
        from publisher.scheduler import run_daemon

        every = None
        if collect_every is not None:
            raw = collect_every + "m" if collect_every.strip().isdigit() else collect_every
            seconds = config_module.parse_duration(raw, "--collect-every")
            if seconds < 1:
                raise click.BadParameter("must be at least 1s", param_hint="--collect-every")
            every = timedelta(seconds=seconds)
        logging.getLogger("publisher").setLevel(logging.INFO)
        with pipeline.sender_session(app, "run"):
            run_daemon(app, every)
        return
    with pipeline.sender_session(app, "run"):
        report = pipeline.run_once(app)
    _print_collect(report.collected)
    _print_feeds(report.feeds)
    for send_report in report.sends:
        _print_send(app, send_report)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    sent = sum(r.sent for r in report.sends)
    failed = sum(r.failed for r in report.sends)
    held = sum(h.count for r in report.sends for h in r.held_by)
    tail = f"; {held} still held by other workers (not done)" if held else ""
    click.echo(f"done      {sent} message(s) sent, {failed} failed{tail}")
    if report.errors:
        ctx.exit(1)


# -- subscribers -----------------------------------------------------------------------


def normalize_email(raw: str) -> str:
    """Validate an address (syntax only, no DNS) and return it in canonical lower case."""
    raw = raw.strip()
    try:
        result = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid address {raw!r}: {exc}") from exc
    return result.normalized.lower()


def _digest_ids(config: config_module.Config, given: list[str] | tuple[str, ...]) -> list[str]:
    if not given:
        return [d.id for d in config.digests]
    for digest_id in given:
        config.digest(digest_id)
    return list(given)


@cli.group()
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
    from publisher.subscriber_admin import add

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
    from publisher.subscriber_admin import change

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
    from publisher.progress import bar
    from publisher.subscriber_admin import import_csv

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
    from publisher.subscriptions import email_hash

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
    from publisher.subscriber_admin import remove

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
    from publisher.subscriber_csv import export_lines

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


# -- operator's toolbox: issues, check -------------------------------------------------


@cli.group()
def issues() -> None:
    """List, inspect, cancel and resend issues."""


def _issue_or_fail(app: pipeline.App, issue_id: int) -> Any:
    issue = app.store.get_issue(issue_id)
    if issue is None:
        raise PublisherError(f"no issue #{issue_id} (see `publisher issues list`)")
    return issue


@issues.command("list")
@click.option("--digest", "digest_id", help="Only this digest's issues.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (for monitoring).")
@click.pass_context
def issues_list(ctx: click.Context, digest_id: str | None, limit: int, as_json: bool) -> None:
    """List the newest issues with their delivery counts."""
    from publisher import toolbox

    app = _app(ctx)
    if digest_id:
        app.config.digest(digest_id)
    found = [i for i in app.store.list_issues(limit if not digest_id else 5000) if not digest_id or i.digest_id == digest_id]
    data = [toolbox.issue_data(app.store, i) for i in found[:limit]]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    table = Table("issue", "digest", "period", "created", "status", "articles", *toolbox.COUNT_KEYS)
    for row in data:
        table.add_row(
            str(row["id"]), row["digest"], row["period"], row["created_at"][:16].replace("T", " "),
            row["status"], str(row["articles"]), *(str(row["counts"][k]) for k in toolbox.COUNT_KEYS),
        )  # fmt: skip
    _console().print(table)
    click.echo(f"{len(data)} issue(s)")


@issues.command("show")
@click.argument("issue_id", metavar="ID", type=int)
@click.pass_context
def issues_show(ctx: click.Context, issue_id: int) -> None:
    """Show one issue: subject, articles, delivery counts, rate, ETA, deliveries held by
    the send window and failure replies."""
    app = _app(ctx)
    issue = _issue_or_fail(app, issue_id)
    _print_issue_status(app, issue_id)
    for article in app.store.articles_by_id(issue.article_ids):
        click.echo(f"article   {article.title} <{article.url}>")


@issues.command("cancel")
@click.argument("issue_id", metavar="ID", type=int)
@click.option(
    "--drop-articles",
    is_flag=True,
    help="Drop the issue's articles instead of giving them to the digest's next issue.",
)
@click.pass_context
def issues_cancel(ctx: click.Context, issue_id: int, drop_articles: bool = False) -> None:
    """Stop issue ID: its queued deliveries are skipped and no run resumes it.

    Messages already handed to the relay cannot be recalled; those in flight finish.
    The issue's articles go into the digest's next issue (the next period's: a send in
    the same period says the period's issue was cancelled), unless --drop-articles.
    An issue with nothing left to send is not cancelled (exit 1).
    """
    app = _app(ctx)
    issue = _issue_or_fail(app, issue_id)
    skipped, released = app.store.cancel_issue(
        issue_id, app.clock(), release_articles=not drop_articles
    )
    line = f"cancelled issue #{issue_id}: {skipped} queued delivery(ies) skipped"
    if released:
        line += f"; its {released} article(s) go into the next issue of {issue.digest_id}"
    elif drop_articles:
        line += "; its articles are dropped (--drop-articles)"
    click.echo(line)


@issues.command("resend")
@click.argument("issue_id", metavar="ID", type=int)
@click.option("--failed", "failed", is_flag=True, required=True, help="Requeue the deliveries that failed (required).")
@click.pass_context
def issues_resend(ctx: click.Context, issue_id: int, failed: bool) -> None:
    """Requeue issue ID's failed deliveries with a fresh retry budget, then send them.

    Bounced addresses are not retried. Messages already sent are never sent again.
    """
    app = _app(ctx)
    issue = _issue_or_fail(app, issue_id)
    requeued = app.store.requeue_failed(issue_id, app.clock())
    click.echo(f"requeued  {requeued} failed delivery(ies) of issue #{issue_id}")
    if not requeued:
        return
    from publisher.progress import attached
    from publisher.worker import stop_on_signals

    with stop_on_signals() as stop, attached(app, sys.stderr):
        report = pipeline.deliver_open_issue(app, app.store.get_issue(issue.id) or issue, stop)
    _print_send(app, report)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check everything before a send and print a checklist; exit 1 if anything fails.

    The config (every key), the templates (rendered with sample articles), the transport
    (SMTP: connect, EHLO, STARTTLS and AUTH when a username is set, no message sent;
    file: the outbox), the store (opened and migrated, never created) and each digest's
    next send. A "warn" line (such as a numeric day of week, which publisher 0.1 counted
    from Monday) does not fail the check.
    """
    from publisher import checks
    from publisher.clock import now

    results = checks.run_checks(ctx.find_root().obj, now())
    for result in results:
        mark = "FAIL" if not result.ok else "warn" if result.warning else "ok  "
        click.echo(f"{mark}  {result.name:<10} {result.detail}")
    failed = [r for r in results if not r.ok]
    warned = sum(1 for r in results if r.warning)
    summary = "all checks passed" if not failed else f"{len(failed)} check(s) failed"
    click.echo(summary + (f", {warned} warning(s)" if warned else ""))
    if failed:
        ctx.exit(1)


# -- status / db -----------------------------------------------------------------------


def _print_issue_status(app: pipeline.App, issue_id: int) -> None:
    from publisher.progress import format_seconds, issue_view

    issue = app.store.get_issue(issue_id)
    if issue is None:
        raise PublisherError(f"no issue #{issue_id} (see `publisher status` for the list)")
    view = issue_view(app.store, issue, app.clock())
    c = view.counts
    click.echo(f"issue     #{issue.id} {issue.digest_id} {issue.period}: {issue.subject!r} [{issue.status}]")
    click.echo(
        f"counts    {c['queued']} queued, {c['sending']} sending, {c['sent']} sent, "
        f"{c['failed']} failed, {c['bounced']} bounced, {c['skipped']} skipped"
    )
    eta = "-" if view.eta_seconds is None else format_seconds(view.eta_seconds)
    click.echo(f"rate      {view.rate:.1f} msg/s over the last minute, ETA {eta}")
    if view.next_retry_at is not None:
        click.echo(f"retry     next queued delivery due at {view.next_retry_at.isoformat()}")
    if view.throttle:
        click.echo(
            f"backoff   the relay asked to slow down: paused until "
            f"{view.throttle['until'].isoformat()} ({view.throttle['reply']})"
        )
    held, until = app.store.held_deliveries(issue.id, app.clock())
    if held:
        click.echo(f"held      {held_text(app, issue.digest_id, held, until)}")
    for reply, n in view.failures:
        click.echo(f"failed    {n} x {reply}")
    _print_holders(app, issue_id)


def _print_holders(app: pipeline.App, issue_id: int) -> None:
    from publisher import liveness

    for h in liveness.issue_holders(app.store, issue_id):
        when = {
            "alive": "alive: they stay with it until it finishes, stops or dies",
            "gone": "gone: the next send, run or worker takes them over at once",
            "unknown": f"liveness unknown: they come back when the lease ends at {h['lease_until']}",
        }[str(h["state"])]
        click.echo(f"held      {h['claims']} claimed by {h['holder']} (worker #{h['worker_id']}, {when})")


@cli.command()
@click.argument("issue_id", metavar="[ISSUE]", required=False, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for monitoring).")
@click.pass_context
def status(ctx: click.Context, issue_id: int | None, as_json: bool = False) -> None:
    """Show each digest's next send and last issue, recent issues with delivery counts,
    deliveries held by a send_window, failing sources, the size of the retry queue, each
    SMTP relay's health (healthy, or unhealthy with its last error and when it is
    re-checked), limits paused now, and the sending processes (workers) with their state
    (alive, gone, unknown) and the claims they hold.

    With ISSUE (an issue number): its delivery counts, send rate over the last minute,
    ETA, any "slow down" backoff from the relay, the most common failure replies, and
    which workers hold its deliveries in flight.
    """
    from publisher import toolbox

    app = _app(ctx)
    if issue_id is not None:
        _print_issue_status(app, issue_id)
        return
    now = app.clock()
    if as_json:
        click.echo(json.dumps(toolbox.status_data(app, now), indent=2))
        return
    console = _console()
    digests = Table("digest", "schedule", "time zone", "current period", "next send", "last issue")
    for digest in app.config.digests:
        period = planning.current_period(digest, now)
        nxt = planning.next_fire_time(digest, now)
        last = app.store.last_issue(digest.id)
        last_text = "-"
        if last is not None:
            c = app.store.delivery_counts(last.id)
            last_text = f"#{last.id} {last.period} ({last.status}): {c['sent']} sent, {c['failed']} failed, {c['queued']} queued"
        digests.add_row(
            digest.id,
            digest.schedule,
            digest.timezone,
            period.key if period else "-",
            nxt.isoformat() if nxt else "-",
            last_text,
        )
    console.print(digests)
    click.echo(f"retries   {app.store.retry_queue_size()} queued deliveries waiting to be retried")
    issues = Table(
        "issue",
        "digest",
        "period",
        "created",
        "status",
        "queued",
        "sending",
        "sent",
        "failed",
        "bounced",
        "skipped",
    )
    failures: list[str] = []
    holds: list[str] = []
    for issue in app.store.list_issues(20):
        counts = app.store.delivery_counts(issue.id)
        issues.add_row(
            str(issue.id), issue.digest_id, issue.period, f"{issue.created_at:%Y-%m-%d %H:%M}", issue.status,
            *(str(counts[k]) for k in ("queued", "sending", "sent", "failed", "bounced", "skipped")),
        )  # fmt: skip
        for reply, n in app.store.failures(issue.id, 3):
            failures.append(f"issue {issue.id}: {n} x {reply}")
        if issue.status == "sending":
            held, until = app.store.held_deliveries(issue.id, now)
            if held:
                holds.append(f"issue {issue.id}: {held_text(app, issue.digest_id, held, until)}")
    console.print(issues)
    for line in holds:
        click.echo(f"held      {line}")
    for line in failures:
        click.echo(f"failed    {line}")
    throttle = app.store.throttle()
    if throttle and throttle["until"] > now:
        click.echo(f"backoff   relay asked to slow down; paused until {throttle['until']:%H:%M:%S} UTC ({throttle['reply']})")
    for relay in toolbox.relay_data(app):
        _print_relay(relay)
    for paused in app.store.paused_buckets():
        click.echo(f"paused    {paused['key']} until {paused['until']:%H:%M:%S} UTC ({paused['reply']})")
    for state in app.store.source_states():
        if state["last_error"]:
            click.echo(
                f"source    {state['source']}: {state['consecutive_failures']} failing run(s): {state['last_error']}"
            )
    click.echo(f"articles  {app.store.count_articles()} stored")
    from publisher import liveness

    for w in liveness.workers_data(app.store):
        click.echo(
            f"worker    #{w['id']} {w['host']}:{w['pid']} ({w['command']}, {w['state']}): "
            f"{w['claims']} claim(s), started {w['started_at']}, last heartbeat {w['heartbeat_at']}"
        )


def _print_relay(relay: dict[str, Any]) -> None:
    rate = f", {relay['rate']:g} msg/s" if relay["rate"] else ""
    line = f"relay     {relay['name']} (priority {relay['priority']}{rate}): {relay['state']}"
    if relay["state"] == "unhealthy":
        line += f" since {relay['changed_at']}, re-checked after {relay['recheck_at']}"
    if relay["failures"] or relay["refusals"]:
        line += f"; {relay['failures']} connection failure(s), {relay['refusals']} 421(s) in a row"
    if relay["last_error"] and relay["state"] == "unhealthy":
        line += f": {relay['last_error']}"
    click.echo(line)


@cli.group()
def bounces() -> None:
    """Process bounce messages (delivery status notifications)."""


@bounces.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.pass_context
def bounces_import(ctx: click.Context, path: Path) -> None:
    """Read bounces from PATH (a Maildir folder, an mbox file or one .eml file).

    Hard bounces (permanent failures such as 5.1.1 "no such user") mark the subscriber
    bounced at once; soft ones (mailbox full, delays, 4.x.x) are counted, and 3 within 30
    days count as hard. Bounced subscribers get no more mail. Importing the same messages
    again counts nothing twice.
    """
    from publisher import bounces as bounce_module

    app = _app(ctx)
    report = pipeline.BounceReport()
    for raw in bounce_module.read_mailbox(path):
        pipeline.import_bounce(app, raw, report)
    _print_bounces(report)


@bounces.command("poll")
@click.pass_context
def bounces_poll(ctx: click.Context) -> None:
    """Read the [bounces] IMAP folder once and move the bounces handled to processed_folder.

    The daemon (publisher run) does this every [bounces] poll_minutes when imap_host is set.
    """
    app = _app(ctx)
    if not app.config.bounces.imap_host:
        raise PublisherError("no IMAP mailbox configured: set [bounces] imap_host (see README, Bounces)")
    report, moved = pipeline.poll_bounces(app)
    _print_bounces(report)
    click.echo(f"imap      {moved} message(s) moved to {app.config.bounces.processed_folder!r}")


def _print_bounces(report: pipeline.BounceReport) -> None:
    for line in report.marked:
        click.echo(f"bounced   {line}")
    click.echo(
        f"bounces   {report.messages} message(s): {report.hard} hard, {report.soft} soft, "
        f"{report.not_bounces} not bounces; {len(report.marked)} subscriber(s) marked bounced, "
        f"{report.unknown} unknown address(es), {report.duplicates} already seen"
    )


@cli.command()
@click.argument(
    "folder", metavar="[DIR]", default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml.")
@click.option(
    "--email",
    metavar="EMAIL",
    default="you@example.org",
    show_default=True,
    help='The first subscriber, so the first run has someone to write to ("" for none).',
)
def init(folder: Path, force: bool, email: str) -> None:
    """Create a new site in DIR (default: the current folder).

    Writes a commented config.toml (the file transport, SQLite, a Markdown source), an
    example article in content/ and an empty templates/ folder for overrides, then adds
    EMAIL as the first subscriber, so that `publisher run --once` in DIR collects the
    article, writes the feeds and writes a message to outbox/. An existing config.toml is
    kept unless --force is given; an existing article or templates/ folder is always kept.
    """
    from publisher import clock, scaffold

    address = normalize_email(email) if email else ""  # a bad address fails before writing
    report = scaffold.init_site(folder, clock.now(), force=force)
    labelled = (("created", report.created), ("replaced", report.replaced), ("kept", report.kept))
    for label, paths in labelled:
        for path in paths:
            click.echo(f"{label:<9} {_rel(path)}{'/' if path.is_dir() else ''}")
    config = config_module.load(folder / scaffold.CONFIG_NAME)
    if address:
        app = pipeline.open_app(config)
        try:
            ids = [d.id for d in config.digests]
            subscriber, created = app.store.add_subscriber(address, "", ids, app.clock())
        finally:
            app.store.close()
        state = "added" if created else "already present"
        click.echo(f"subscriber {subscriber.email} {state} ({', '.join(ids)})")
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {_rel(folder)} && "
    click.echo(f"next      {where}publisher run --once")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending schema migrations (also done automatically on first use)."""
    config = _config(ctx)
    store = Store.open(config.store_url, migrate=False)
    try:
        applied = store.upgrade()
    finally:
        store.close()
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="publisher")
