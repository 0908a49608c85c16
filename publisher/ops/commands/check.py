"""``publisher check``: the pre-send checklist.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import click


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check everything before a send and print a checklist; exit 1 if anything fails.

    The config (every key), the templates (rendered with sample articles), the transport
    (SMTP: connect, EHLO, STARTTLS and AUTH when a username is set, no message sent;
    file: the outbox), the store (opened and migrated, never created), the variables of
    each webhook and enabled provider webhook ([hooks.<provider>]) and each digest's
    next send. A "warn" line (such as a numeric day of week, which publisher 0.1 counted
    from Monday) does not fail the check.
    """
    from publisher.clock import now
    from publisher.ops import checks

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
