"""``publisher status``: digests, issues, relays, limits and workers at a glance.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from publisher.ops.common import (
    _app,
    _console,
    _print_issue_status,
    held_text,
)

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.app import App


@click.command()
@click.argument("issue_id", metavar="[ISSUE]", required=False, type=int)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (for monitoring); its `monitoring` key holds the figures "
    "/metrics serves.",
)
@click.pass_context
def status(ctx: click.Context, issue_id: int | None, as_json: bool = False) -> None:
    """Show each digest's next send and last issue, recent issues with delivery counts,
    deliveries held by a send_window, paused issues with their queued count, failing
    sources, the size of the retry queue, each SMTP relay's health (healthy, or unhealthy
    with its last error and when it is re-checked), limits paused now, and the sending
    processes (workers) with their state (alive, gone, unknown) and the claims they hold.

    A webhook turned off for failing is shown with its last error and waiting events.

    With ISSUE (an issue number): its delivery counts, send rate over the last minute,
    ETA, any "slow down" backoff from the relay, the most common failure replies, and
    which workers hold its deliveries in flight.
    """
    from publisher.ops import reports
    from publisher.services import guard

    app = _app(ctx)
    if issue_id is not None:
        _print_issue_status(app, issue_id)
        return
    now = app.clock()
    if as_json:
        click.echo(json.dumps(reports.status_data(app, now), indent=2))
        return
    console = _console()
    _print_digests(console, app, now)
    click.echo(f"retries   {app.store.retry_queue_size()} queued deliveries waiting to be retried")
    _print_issues(console, app, now)
    for issue, queued in app.store.paused_issues():
        why = guard.pause_reason(app, issue.id)  # set when the issue paused itself
        click.echo(
            f"paused    issue #{issue.id} ({issue.digest_id} {issue.period}): {queued} queued, "
            + (f"paused automatically: {why}; " if why else "")
            + f"waiting for `publisher issues resume {issue.id}` (or cancel)"
        )
    throttle = app.store.throttle()
    if throttle and throttle["until"] > now:
        click.echo(f"backoff   relay asked to slow down; paused until {throttle['until']:%H:%M:%S} UTC ({throttle['reply']})")
    for relay in reports.relay_data(app):
        _print_relay(relay)
    for paused in app.store.paused_buckets():
        click.echo(f"paused    {paused['key']} until {paused['until']:%H:%M:%S} UTC ({paused['reply']})")
    for state in app.store.source_states():
        if state["last_error"]:
            click.echo(
                f"source    {state['source']}: {state['consecutive_failures']} failing run(s): {state['last_error']}"
            )
    click.echo(f"articles  {app.store.count_articles()} stored")
    for hook in reports.webhook_data(app):
        if not hook["enabled"]:
            click.echo(
                f"webhook   {hook['name']} is off since {hook['disabled_at']} after "
                f"{hook['failures']} failures ({hook['last_error']}); {hook['pending']} event(s) "
                f"waiting for `publisher webhooks enable {hook['name']}`"
            )
    _print_workers(app)


def _print_digests(console: Console, app: App, now: datetime) -> None:
    """The table of digests: schedule, current period, next send and last issue."""
    from rich.table import Table

    from publisher.compose import planning

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


def _print_issues(console: Console, app: App, now: datetime) -> None:
    """The 20 newest issues with their counts, then their held and failed lines."""
    from rich.table import Table

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


def _print_workers(app: App) -> None:
    from publisher.deliver import liveness

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
