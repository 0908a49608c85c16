"""``publisher purge --older-than 180d``: remove old rows, keep the counts.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import json

import click

from publisher.ops.common import _app

_LABELS = {
    "deliveries": "delivery rows of finished issues (counts kept per issue)",
    "audit": "audit log entries",
    "webhook_events": "webhook events (and their deliveries)",
    "webhook_attempts": "webhook attempts",
    "login_failures": "failed-login records",
    "sessions": "expired console sessions",
    "idempotency_keys": "expired API idempotency keys",
}


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="cut-off age: 180d, 26w, 12h ... (at least 1d)")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="print what would be removed; remove nothing")
@click.option("--json", "as_json", is_flag=True, help="print the counts as JSON")
@click.pass_context
def purge(ctx: click.Context, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove delivery rows of finished issues, audit entries and webhook history older than AGE, and expired sessions and API keys; per-issue counts are kept.

    Only issues that are sent or cancelled lose their delivery rows (their counts by status
    are rolled up first, so status, issues show, the console and the API report the same
    figures); an issue still sending or paused is never touched. Engagement events go too
    when engagement tracking is built in. Deletes run in batches of 1000 rows, each its own
    short transaction: on PostgreSQL it is safe while workers send.
    """
    from datetime import timedelta

    from publisher.config.values import parse_duration
    from publisher.errors import ConfigError, PublisherError
    from publisher.services import retention

    try:
        seconds = parse_duration(older_than, "--older-than")
    except ConfigError as exc:
        raise PublisherError(str(exc)) from exc
    app = _app(ctx)
    report = retention.purge(app, timedelta(seconds=seconds), dry_run=dry_run)
    if as_json:
        data = {"before": report.before.isoformat(), "dry_run": dry_run,
                "removed": report.removed, "notes": report.notes}  # fmt: skip
        click.echo(json.dumps(data, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"purge     rows older than {report.before:%Y-%m-%d %H:%M} UTC ({older_than})")
    for key, count in report.removed.items():
        click.echo(f"{verb:<13} {count:>8}  {_LABELS.get(key, key.replace('_', ' '))}")
    for note in report.notes:
        click.echo(f"note      {note}")
    if dry_run:
        click.echo("dry run: nothing was removed")
