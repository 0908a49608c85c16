"""``publisher worker``: send the queued deliveries of every open issue until SIGTERM.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import logging
import sys

import click

from publisher.ops.common import (
    _app,
)


@click.command()
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
    Paused issues are passed by (`publisher issues resume` lets them go); an issue paused
    while a worker sends it is left within about a second, its rest still queued.
    Due [[webhooks]] events are delivered meanwhile (and once more before --until-idle exits).
    """
    from publisher.ops.commands.webhooks import pass_line
    from publisher.ops.progress import attached
    from publisher.ops.webhook_pump import webhook_pump
    from publisher.ops.worker import run_worker, stop_on_signals
    from publisher.services import sending, webhooks

    app = _app(ctx)
    logging.getLogger("publisher").setLevel(logging.INFO)
    with stop_on_signals() as stop, attached(app, sys.stderr), sending.sender_session(app, "worker"):
        with webhook_pump(app, stop, poll_seconds=poll):
            report = run_worker(app, stop, until_idle=until_idle, poll_seconds=poll)
        if until_idle and not stop.is_set():
            # The events of this run (issue.sent, bounces) go out before it exits.
            hooks = webhooks.deliver_due(app, stop=stop)
            if hooks.attempts:
                click.echo(f"webhooks  {pass_line(hooks)}")
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
    from publisher.services import guard

    for issue, queued in app.store.paused_issues():
        why = guard.pause_reason(app, issue.id)
        auto = f" (paused automatically: {why})" if why else ""
        click.echo(f"paused    issue #{issue.id}: {queued} queued{auto}, not sent until `publisher issues resume {issue.id}`")
