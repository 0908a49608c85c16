"""``publisher webhooks ...``: list the hooks, deliver what is due, history, enable.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

from typing import Any

import click

from publisher.ops.common import _app, _console, cli_actor


@click.group()
def webhooks() -> None:
    """List the outgoing webhooks, deliver due events, show their history, turn one back on."""


def pass_line(report: Any) -> str:
    """One line for a delivery pass (shared with ``publisher worker`` and ``run --once``)."""
    line = f"{report.delivered} delivered, {report.failed} to retry, {report.given_up} given up"
    if report.deferred:
        line += f", {report.deferred} waiting behind a failing hook"
    for name in report.turned_off:
        line += f"; {name} turned off (publisher webhooks enable {name})"
    return line


@webhooks.command("list")
@click.pass_context
def webhooks_list(ctx: click.Context) -> None:
    """Each [[webhooks]] entry: its state (on, or off after failures), failed attempts in a
    row, events waiting, the last success and the last error."""
    from rich.table import Table

    from publisher.services import webhooks as service

    app = _app(ctx)
    rows = service.hooks(app)
    if not rows:
        click.echo("no webhooks (add a [[webhooks]] entry to config.toml)")
        return
    table = Table("name", "state", "failures", "pending", "last success", "last error", "url")
    for hook in rows:
        state = "on" if hook.enabled else f"off since {hook.disabled_at:%Y-%m-%d %H:%M}"
        table.add_row(
            hook.name,
            state,
            str(hook.failures),
            str(hook.pending),
            "never" if hook.last_success_at is None else f"{hook.last_success_at:%Y-%m-%d %H:%M}",
            hook.last_error or "-",
            hook.url,
        )
    _console().print(table)


@webhooks.command("history")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="How many attempts to show.")
@click.option("--hook", "hook", default=None, metavar="NAME", help="Only this hook's attempts.")
@click.pass_context
def webhooks_history(ctx: click.Context, limit: int, hook: str | None) -> None:
    """The newest POSTs first: when, hook, event, attempt, the answer's status code or the
    error, and how long it took."""
    from rich.table import Table

    from publisher.services import webhooks as service

    attempts = service.history(_app(ctx), limit, hook=hook)
    if not attempts:
        click.echo("no webhook attempts yet")
        return
    table = Table("at (UTC)", "hook", "event", "id", "try", "result", "ms")
    for a in attempts:
        result = str(a.status_code) if a.ok else (a.error or str(a.status_code))
        table.add_row(f"{a.at:%Y-%m-%d %H:%M:%S}", a.hook, a.event_type, a.event_id, str(a.attempt), result, str(a.duration_ms))
    _console().print(table)


@webhooks.command("deliver")
@click.pass_context
def webhooks_deliver(ctx: click.Context) -> None:
    """Deliver every due webhook event once, then exit (the daemon and workers do this on
    their own; use it from cron, or after `webhooks enable`). Exit 1 if a hook failed."""
    from publisher.services import webhooks as service

    app = _app(ctx)
    if not app.config.webhooks:
        click.echo("no webhooks (add a [[webhooks]] entry to config.toml)")
        return
    report = service.deliver_due(app)
    click.echo(f"webhooks  {pass_line(report)}")
    if report.failed or report.given_up:
        ctx.exit(1)


@webhooks.command("enable")
@click.argument("name")
@click.pass_context
def webhooks_enable(ctx: click.Context, name: str) -> None:
    """Turn the hook NAME back on after it was turned off for failing: its failures start
    again at 0 and the events it missed are delivered at the next pass."""
    from publisher.services import webhooks as service

    hook = service.enable(_app(ctx), name, actor=cli_actor())
    click.echo(f"enabled webhook {hook.name}: {hook.pending} event(s) waiting")
