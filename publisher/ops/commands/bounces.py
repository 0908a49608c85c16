"""``publisher bounces ...``: import bounce messages from a mailbox, or poll IMAP.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher.errors import PublisherError
from publisher.ops.common import (
    _app,
)

if TYPE_CHECKING:
    from publisher.services import bounces as bounce_service


@click.group()
def bounces() -> None:
    """Process bounce messages (delivery status notifications) and ARF spam complaints."""


@bounces.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.pass_context
def bounces_import(ctx: click.Context, path: Path) -> None:
    """Read bounces from PATH (a Maildir folder, an mbox file or one .eml file).

    Hard bounces (permanent failures such as 5.1.1 "no such user") mark the subscriber
    bounced at once; soft ones (mailbox full, delays, 4.x.x) are counted, and 3 within 30
    days count as hard. Bounced subscribers get no more mail. ARF feedback-loop reports
    (RFC 5965 spam complaints, as Yahoo and Microsoft send them) unsubscribe the subscriber
    and suppress the address. Importing the same messages again counts nothing twice.
    """
    from publisher.deliver import bounces as bounce_module
    from publisher.services import bounces as bounce_service

    app = _app(ctx)
    report = bounce_service.BounceReport()
    for raw in bounce_module.read_mailbox(path):
        bounce_service.import_bounce(app, raw, report)
    _print_bounces(report)


@bounces.command("poll")
@click.pass_context
def bounces_poll(ctx: click.Context) -> None:
    """Read the [bounces] IMAP folder once and move the bounces handled to processed_folder.

    The daemon (publisher run) does this every [bounces] poll_minutes when imap_host is set.
    """
    from publisher.services import bounces as bounce_service

    app = _app(ctx)
    if not app.config.bounces.imap_host:
        raise PublisherError("no IMAP mailbox configured: set [bounces] imap_host (see README, Bounces)")
    report, moved = bounce_service.poll_bounces(app)
    _print_bounces(report)
    click.echo(f"imap      {moved} message(s) moved to {app.config.bounces.processed_folder!r}")


def _print_bounces(report: bounce_service.BounceReport) -> None:
    for line in report.marked:
        click.echo(f"bounced   {line}")
    for line in report.complained:
        click.echo(f"complaint {line}")
    click.echo(
        f"bounces   {report.messages} message(s): {report.hard} hard, {report.soft} soft, "
        f"{report.not_bounces} not bounces; {len(report.marked)} subscriber(s) marked bounced, "
        f"{report.unknown} unknown address(es), {report.duplicates} already seen"
    )
    if report.complaints:
        click.echo(f"complaints {report.complaints} ARF spam complaint report(s)")
