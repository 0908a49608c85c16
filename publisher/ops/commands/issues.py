"""``publisher issues ...``: list, show, pause, resume, cancel and resend issues.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import json
import sys

import click

from publisher.ops.common import (
    _app,
    _console,
    _print_issue_status,
    _print_send,
)


@click.group()
def issues() -> None:
    """List, inspect, pause, resume, cancel and resend issues."""


@issues.command("list")
@click.option("--digest", "digest_id", help="Only this digest's issues.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (for monitoring).")
@click.pass_context
def issues_list(ctx: click.Context, digest_id: str | None, limit: int, as_json: bool) -> None:
    """List the newest issues with their delivery counts."""
    from rich.table import Table

    from publisher.ops import reports

    app = _app(ctx)
    if digest_id:
        app.config.digest(digest_id)
    found = [i for i in app.store.list_issues(limit if not digest_id else 5000) if not digest_id or i.digest_id == digest_id]
    data = [reports.issue_data(app.store, i) for i in found[:limit]]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    table = Table("issue", "digest", "period", "created", "status", "articles", *reports.COUNT_KEYS)
    for row in data:
        table.add_row(
            str(row["id"]), row["digest"], row["period"], row["created_at"][:16].replace("T", " "),
            row["status"], str(row["articles"]), *(str(row["counts"][k]) for k in reports.COUNT_KEYS),
        )  # fmt: skip
    _console().print(table)
    click.echo(f"{len(data)} issue(s)")


@issues.command("show")
@click.argument("issue_id", metavar="ID", type=int)
@click.pass_context
def issues_show(ctx: click.Context, issue_id: int) -> None:
    """Show one issue: subject, articles, delivery counts, rate, ETA, deliveries held by
    the send window and failure replies."""
    from publisher.services.issues import get_issue

    app = _app(ctx)
    issue = get_issue(app, issue_id)
    _print_issue_status(app, issue_id)
    for article in app.store.articles_by_id(issue.article_ids):
        click.echo(f"article   {article.title} <{article.url}>")


@issues.command("pause")
@click.argument("issue_id", metavar="ID", type=int)
@click.pass_context
def issues_pause(ctx: click.Context, issue_id: int) -> None:
    """Pause issue ID: its queued deliveries stay queued and nothing sends them until
    `publisher issues resume ID`.

    A send, run or worker busy with it (in any process, on any host) stops within about
    a second: the messages in flight finish and are recorded, the rest stays queued.
    A sent or cancelled issue, an issue already paused and one with nothing left to send
    are refused (exit 1). A paused issue can still be cancelled.
    """
    from publisher.services import issues as issue_actions

    done = issue_actions.pause_issue(_app(ctx), issue_id)
    line = f"paused    issue #{issue_id}: {done.queued} queued delivery(ies) wait for `publisher issues resume {issue_id}`"
    if done.sending:
        line += f"; {done.sending} in flight finish"
    click.echo(line)


@issues.command("resume")
@click.argument("issue_id", metavar="ID", type=int)
@click.pass_context
def issues_resume(ctx: click.Context, issue_id: int) -> None:
    """Resume paused issue ID: the next send, run or worker (or the running daemon or
    worker, at its next poll) sends what is queued.

    Nothing is sent by this command. An issue that is not paused is refused (exit 1).
    """
    from publisher.services import issues as issue_actions

    done = issue_actions.resume_issue(_app(ctx), issue_id)
    if done.issue.status == "sent":
        click.echo(f"resumed   issue #{issue_id}: nothing was left to send; it is sent")
        return
    click.echo(
        f"resumed   issue #{issue_id}: {done.queued} queued delivery(ies) go out with the "
        "next send, run or worker"
    )


@issues.command("cancel")
@click.argument("issue_id", metavar="ID", type=int)
@click.option(
    "--drop-articles",
    is_flag=True,
    help="Drop the issue's articles instead of giving them to the digest's next issue.",
)
@click.pass_context
def issues_cancel(ctx: click.Context, issue_id: int, drop_articles: bool = False) -> None:
    """Stop issue ID (sending or paused): its queued deliveries are skipped and no run
    resumes it.

    Messages already handed to the relay cannot be recalled; those in flight finish.
    The issue's articles go into the digest's next issue (the next period's: a send in
    the same period says the period's issue was cancelled), unless --drop-articles.
    An issue with nothing left to send is not cancelled (exit 1).
    """
    from publisher.services import issues as issue_actions

    done = issue_actions.cancel_issue(_app(ctx), issue_id, release_articles=not drop_articles)
    line = f"cancelled issue #{issue_id}: {done.skipped} queued delivery(ies) skipped"
    if done.released:
        line += f"; its {done.released} article(s) go into the next issue of {done.issue.digest_id}"
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
    On a paused issue they are only requeued: they go out after `publisher issues resume ID`.
    """
    from publisher.services import issues as issue_actions

    app = _app(ctx)
    issue, requeued = issue_actions.requeue_failed(app, issue_id)
    click.echo(f"requeued  {requeued} failed delivery(ies) of issue #{issue_id}")
    if not requeued:
        return
    if issue.status == "paused":
        click.echo(
            f"paused    issue #{issue_id} is paused: nothing sent; "
            f"`publisher issues resume {issue_id}` lets them go"
        )
        return
    from publisher.ops.progress import attached
    from publisher.ops.worker import stop_on_signals

    with stop_on_signals() as stop, attached(app, sys.stderr):
        report = issue_actions.deliver(app, issue, stop)
    _print_send(app, report)
