"""``publisher run``: one cycle (--once) or the scheduling daemon.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import click

from publisher import config as config_module
from publisher.ops.common import (
    _app,
    _print_collect,
    _print_feeds,
    _print_send,
)


@click.command()
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

    With --once: one cycle (and one pass of due [[webhooks]] events), a summary, then exit
    (non-zero if a digest failed). Without:
    a daemon that schedules each digest's cron in its time zone (read as crontab reads
    it: 0 and 7 are Sunday) until SIGTERM/SIGINT. At start it sends each digest's latest
    period if it fired within [schedule] catch_up, and logs every job's next fire time;
    SIGTERM finishes the current step and exits 0.
    """
    from publisher.services import cycle, sending

    app = _app(ctx)
    if not once:
        from publisher.ops.scheduler import run_daemon

        every = None
        if collect_every is not None:
            raw = collect_every + "m" if collect_every.strip().isdigit() else collect_every
            seconds = config_module.parse_duration(raw, "--collect-every")
            if seconds < 1:
                raise click.BadParameter("must be at least 1s", param_hint="--collect-every")
            every = timedelta(seconds=seconds)
        logging.getLogger("publisher").setLevel(logging.INFO)
        with sending.sender_session(app, "run"):
            run_daemon(app, every)
        return
    with sending.sender_session(app, "run"):
        report = cycle.run_once(app)
    _print_collect(report.collected)
    _print_feeds(report.feeds)
    for send_report in report.sends:
        _print_send(app, send_report)
    if app.config.webhooks:
        from publisher.ops.commands.webhooks import pass_line
        from publisher.services import webhooks

        click.echo(f"webhooks  {pass_line(webhooks.deliver_due(app))}")
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    sent = sum(r.sent for r in report.sends)
    failed = sum(r.failed for r in report.sends)
    held = sum(h.count for r in report.sends for h in r.held_by)
    tail = f"; {held} still held by other workers (not done)" if held else ""
    click.echo(f"done      {sent} message(s) sent, {failed} failed{tail}")
    if report.errors:
        ctx.exit(1)
