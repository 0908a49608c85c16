"""Helpers shared by the ``publisher`` commands: the app of a command, read-only commands,
and the output lines several commands print (collect, feeds, send, issue status).

Heavy modules (the app and services, hence SQLAlchemy; rich; email_validator) are imported inside
the functions, so that importing this module for ``--help`` stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from publisher import config as config_module
from publisher.errors import PublisherError, SubscriberError

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.app import App
    from publisher.models import SendReport
    from publisher.services import feeds as feed_service
    from publisher.services.audit import Actor

def _config(ctx: click.Context) -> config_module.Config:
    return config_module.load(ctx.find_root().obj)


# Commands that only read: a SQLite store that does not exist is an error naming the path,
# never a new empty database (and folders) made from a typo in [store] url.
_READ_ONLY = {
    ("status",), ("check",), ("preview",), ("issues", "list"), ("issues", "show"),
    ("subscribers", "list"), ("subscribers", "export"), ("operators", "list"), ("tokens", "list"),
    ("stats",),
}  # fmt: skip


def _reads_only(ctx: click.Context) -> bool:
    names: list[str] = []
    node: click.Context | None = ctx
    while node is not None and node.parent is not None:
        names.insert(0, node.info_name or "")
        node = node.parent
    return tuple(names) in _READ_ONLY or (names == ["send"] and bool(ctx.params.get("dry_run")))


def _app(ctx: click.Context) -> App:
    from publisher.app import open_app

    app = open_app(_config(ctx), create=not _reads_only(ctx))
    ctx.call_on_close(app.store.close)
    return app


def cli_actor() -> Actor:
    """Who acts from the command line, for the audit log: ``cli:<OS user>``."""
    import getpass

    from publisher.services.audit import Actor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        user = "unknown"
    return Actor(f"cli:{user}")


def _console() -> Console:
    from rich.console import Console

    # Off a terminal rich would wrap tables at 80 columns; logs and pipes want whole rows.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_collect(report: Any) -> None:
    click.echo(
        f"collect   {report.new} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.errors)} error(s)"
    )
    for error in report.errors:
        click.echo(f"  skipped: {error}", err=True)


def _print_feeds(report: feed_service.FeedsReport) -> None:
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


# -- digests ---------------------------------------------------------------------------


def held_text(app: App, digest_id: str, held: int, until: datetime | None) -> str:
    """``N held until HH:MM (send_window)``, the time local to the digest."""
    if not held or until is None:
        return ""
    try:
        tz = ZoneInfo(app.config.digest(digest_id).timezone)
    except PublisherError:  # an issue of a digest no longer in the config
        tz = ZoneInfo("UTC")
    # A window opens within a day, so the local time of day says when.
    return f"{held} held until {until.astimezone(tz):%H:%M} (send_window)"


def _print_send(app: App, report: SendReport) -> None:
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


@contextmanager
def _registered(app: App, command: str, skip: bool) -> Iterator[None]:
    """Register the process as a sender for the block, unless it will send nothing."""
    from publisher.services import sending

    if skip:
        yield
        return
    with sending.sender_session(app, command):
        yield


def normalize_email(raw: str) -> str:
    """Validate an address (syntax only, no DNS) and return it in canonical lower case."""
    from email_validator import EmailNotValidError, validate_email

    raw = raw.strip()
    try:
        result = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid address {raw!r}: {exc}") from exc
    return result.normalized.lower()


def _print_issue_status(app: App, issue_id: int) -> None:
    from publisher.ops.progress import format_seconds, issue_view

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
    if issue.status == "paused":
        from publisher.services import guard

        why = guard.pause_reason(app, issue.id)
        if why:
            click.echo(f"paused    automatically: {why}")
        click.echo(f"paused    nothing goes out until `publisher issues resume {issue.id}`")
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


def _print_holders(app: App, issue_id: int) -> None:
    from publisher.deliver import liveness

    for h in liveness.issue_holders(app.store, issue_id):
        when = {
            "alive": "alive: they stay with it until it finishes, stops or dies",
            "gone": "gone: the next send, run or worker takes them over at once",
            "unknown": f"liveness unknown: they come back when the lease ends at {h['lease_until']}",
        }[str(h["state"])]
        click.echo(f"held      {h['claims']} claimed by {h['holder']} (worker #{h['worker_id']}, {when})")
