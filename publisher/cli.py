"""The ``publisher`` command (terminal I/O). Each command's docstring is its --help text.

Exit codes: 0 ok, 1 an operational error (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

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
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """Collect articles, write RSS/Atom/JSON feeds, and send email digests.

    Everything is configured in config.toml; see README.md for every key.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = config_path or config_module.default_path()


def _config(ctx: click.Context) -> config_module.Config:
    return config_module.load(ctx.find_root().obj)


def _app(ctx: click.Context) -> pipeline.App:
    app = pipeline.open_app(_config(ctx))
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


@cli.command()
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Pull new and edited articles from every [[sources]] entry into the store.

    A broken file is reported with its path and reason and skipped; the rest are stored.
    """
    _print_collect(pipeline.collect(_app(ctx)))


@cli.command()
@click.pass_context
def feeds(ctx: click.Context) -> None:
    """Write the RSS, Atom and JSON feeds into [feeds] output_dir (only files that changed)."""
    _print_feeds(pipeline.write_feeds(_app(ctx)))


# -- digests ---------------------------------------------------------------------------


def _print_send(app: pipeline.App, report: SendReport) -> None:
    if report.issue is None:
        click.echo(f"{report.digest_id:<9} {report.note}")
        return
    issue = report.issue
    where = app.config.delivery.transport
    target = (
        _rel(app.config.delivery.outbox_dir) + "/"
        if where == "file"
        else f"{app.config.smtp.host}:{app.config.smtp.port}"
    )
    line = (
        f"{report.digest_id:<9} issue {issue.period} (#{issue.id}, {len(issue.article_ids)} article(s)): "
        f"{report.sent} sent, {report.failed} failed"
    )
    if report.retrying:
        line += f", {report.retrying} to retry"
    if report.note:
        line += f" [{report.note}]"
    if report.sent:
        line += f" -> {target}"
    click.echo(line)


@cli.command()
@click.argument("digest")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; write and send nothing.")
@click.pass_context
def send(ctx: click.Context, digest: str, dry_run: bool) -> None:
    """Create DIGEST's issue for the current period (if it has new articles) and deliver it.

    The period is the digest's latest scheduled time at or before now. Running send
    again in the same period sends nothing; queued retries of earlier issues are resumed.
    """
    app = _app(ctx)
    for report in pipeline.send_digest(app, digest, dry_run=dry_run):
        _print_send(app, report)


@cli.command()
@click.argument("digest")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write.")
@click.pass_context
def preview(ctx: click.Context, digest: str, out: Path | None) -> None:
    """Render DIGEST's next issue to an HTML file; nothing is stored or sent.

    When there are no new articles, the latest issue is rendered instead.
    """
    app = _app(ctx)
    digest_config = app.config.digest(digest)
    articles = pipeline.next_issue_articles(app, digest_config)
    label = "next issue"
    if not articles:
        latest = next((i for i in app.store.list_issues(500) if i.digest_id == digest), None)
        if latest is None:
            raise PublisherError(
                f"digest {digest!r} has no new articles and no past issue to preview"
            )
        articles = app.store.articles_by_id(latest.article_ids)
        label = f"issue {latest.period} (no new articles)"
    rendered = pipeline.render_issue(app, digest_config, articles, app.clock())
    page = (
        rendered.html.replace("PUBLISHER_GREETING", "Hi Reader,")
        .replace(
            "PUBLISHER_UNSUBSCRIBE_URL",
            html.escape(app.config.web.base_url + "/unsubscribe/preview"),
        )
        .replace(
            "PUBLISHER_PREFERENCES_URL",
            html.escape(app.config.web.base_url + "/preferences/preview"),
        )
    )
    out = out or Path(f"preview-{digest}.html")
    out.write_text(page, encoding="utf-8")
    click.echo(
        f"preview   {label}: {len(articles)} article(s), subject {rendered.subject!r} -> {_rel(out.resolve())}"
    )


@cli.command()
@click.option("--once", is_flag=True, help="Run one cycle (collect, feeds, due digests) and exit.")
@click.option(
    "--collect-every",
    default=15,
    show_default=True,
    type=click.IntRange(min=1),
    help="Daemon only: minutes between collect + feeds runs.",
)
@click.pass_context
def run(ctx: click.Context, once: bool, collect_every: int) -> None:
    """Collect, write feeds and send every due digest.

    With --once: one cycle, a summary, then exit (non-zero if a digest failed). Without:
    a daemon that schedules each digest's cron in its time zone until SIGTERM/SIGINT.
    """
    app = _app(ctx)
    if not once:
        from publisher.scheduler import run_daemon

        logging.getLogger("publisher").setLevel(logging.INFO)
        run_daemon(app, timedelta(minutes=collect_every))
        return
    report = pipeline.run_once(app)
    _print_collect(report.collected)
    _print_feeds(report.feeds)
    for send_report in report.sends:
        _print_send(app, send_report)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    sent = sum(r.sent for r in report.sends)
    failed = sum(r.failed for r in report.sends)
    click.echo(f"done      {sent} message(s) sent, {failed} failed")
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
    """Add, import, list, remove and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name, used in the greeting.")
@click.option("--digest", "digests", multiple=True, help="Digest id (repeatable). Default: all.")
@click.pass_context
def subscribers_add(ctx: click.Context, email: str, name: str, digests: tuple[str, ...]) -> None:
    """Add EMAIL as an active subscriber (you vouch for their consent).

    An existing address is made active again and gains the given digests.
    """
    app = _app(ctx)
    address = normalize_email(email)
    ids = _digest_ids(app.config, digests)
    subscriber, created = app.store.add_subscriber(address, name.strip(), ids, app.clock())
    verb = "added" if created else "updated"
    click.echo(f"{verb} {subscriber.email} ({', '.join(subscriber.digests) or 'no digests'})")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def subscribers_import(ctx: click.Context, csv_file: Path) -> None:
    """Import subscribers from CSV_FILE (header row: email[,name,digests,tags]).

    digests and tags are space-separated; empty digests means every digest. Rows are
    active at once. Existing addresses are left as they are, so an import never
    re-subscribes someone who left. Bad rows are reported by line and skipped; the exit
    code is then 1.
    """
    app = _app(ctx)
    now = app.clock()
    added = existing = 0
    errors: list[str] = []
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "email" not in fields:
            raise SubscriberError(f"{csv_file}:1: the header row has no 'email' column")
        reader.fieldnames = fields
        for row in reader:
            line = reader.line_num
            try:
                address = normalize_email(row.get("email") or "")
                ids = _digest_ids(app.config, (row.get("digests") or "").split())
                tags = (row.get("tags") or "").split()
                _, created = app.store.add_subscriber(
                    address, (row.get("name") or "").strip(), ids, now, reactivate=False, tags=tags
                )
            except PublisherError as exc:
                errors.append(f"{csv_file}:{line}: {exc}")
                continue
            added += created
            existing += not created
    for error in errors:
        click.echo(f"skipped: {error}", err=True)
    click.echo(f"imported {added} new, {existing} already present, {len(errors)} rejected")
    if errors:
        ctx.exit(1)


@subscribers.command("list")
@click.option("--status", type=click.Choice(["active", "pending", "unsubscribed", "bounced"]))
@click.pass_context
def subscribers_list(ctx: click.Context, status: str | None) -> None:
    """List subscribers with their status and digests."""
    app = _app(ctx)
    table = Table("email", "name", "status", "digests", "since")
    count = 0
    for sub in app.store.list_subscribers(status):
        table.add_row(
            sub.email, sub.name, sub.status, " ".join(sub.digests), f"{sub.created_at:%Y-%m-%d}"
        )
        count += 1
    _console().print(table)
    click.echo(f"{count} subscriber(s)")


@subscribers.command("remove")
@click.argument("email")
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str) -> None:
    """Unsubscribe EMAIL from everything; queued messages to them are not sent.

    The row is kept (status unsubscribed) for the delivery history, and so that a later
    import does not add the address back.
    """
    app = _app(ctx)
    sub = app.store.set_subscriber_status(normalize_email(email), "unsubscribed", app.clock())
    click.echo(f"removed {sub.email} (status unsubscribed)")


def _csv_safe(value: str) -> str:
    # A leading = + - @ or tab makes spreadsheets evaluate the cell as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@subscribers.command("export")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default stdout)."
)
@click.pass_context
def subscribers_export(ctx: click.Context, out: Path | None) -> None:
    """Export every subscriber as CSV (email,name,status,digests,created_at)."""
    app = _app(ctx)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "status", "digests", "created_at"])
    for sub in app.store.list_subscribers():
        writer.writerow(
            [
                _csv_safe(v)
                for v in (
                    sub.email,
                    sub.name,
                    sub.status,
                    " ".join(sub.digests),
                    sub.created_at.isoformat(),
                )
            ]
        )
    if out:
        out.write_text(buffer.getvalue(), encoding="utf-8")
    else:
        sys.stdout.write(buffer.getvalue())


# -- status / db -----------------------------------------------------------------------


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show each digest's next send, recent issues with delivery counts, and source health."""
    app = _app(ctx)
    now = app.clock()
    console = _console()
    digests = Table("digest", "schedule", "time zone", "current period", "next send")
    for digest in app.config.digests:
        period = planning.current_period(digest, now)
        nxt = planning.next_fire_time(digest, now)
        digests.add_row(
            digest.id,
            digest.schedule,
            digest.timezone,
            period.key if period else "-",
            nxt.isoformat() if nxt else "-",
        )
    console.print(digests)
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
        "skipped",
    )
    failures: list[str] = []
    for issue in app.store.list_issues(20):
        counts = app.store.delivery_counts(issue.id)
        issues.add_row(
            str(issue.id), issue.digest_id, issue.period, f"{issue.created_at:%Y-%m-%d %H:%M}", issue.status,
            *(str(counts[k]) for k in ("queued", "sending", "sent", "failed", "skipped")),
        )  # fmt: skip
        for reply, n in app.store.failures(issue.id, 3):
            failures.append(f"issue {issue.id}: {n} x {reply}")
    console.print(issues)
    for line in failures:
        click.echo(f"failed    {line}")
    for state in app.store.source_states():
        if state["last_error"]:
            click.echo(
                f"source    {state['source']}: {state['consecutive_failures']} failing run(s): {state['last_error']}"
            )
    click.echo(f"articles  {app.store.count_articles()} stored")


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
