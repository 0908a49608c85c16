"""``publisher collect``: pull new and edited articles from the sources into the store.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import click

from publisher.ops.common import (
    _app,
    _print_collect,
)


@click.command()
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Pull new and edited articles from every [[sources]] entry into the store.

    A broken file is reported with its path and reason and skipped; the rest are stored.
    Titles, authors and tags are stored as plain text: markup is stripped, its text kept.
    Everything that can be collected is; the exit code is then 1 when a file was skipped
    or a source failed (`publisher status` shows failing sources). On a terminal, a
    progress bar counts the sources done.
    """
    from publisher.ops.progress import bar
    from publisher.services import collecting

    app = _app(ctx)
    with bar("collecting", len(app.config.sources)) as advance:
        report = collecting.collect(app, on_source=advance)
    _print_collect(report)
    if report.failed_sources:
        click.echo(
            f"failed    source(s) {', '.join(report.failed_sources)} could not be read "
            "(see `publisher status`)",
            err=True,
        )
    if not report.ok:
        ctx.exit(1)
