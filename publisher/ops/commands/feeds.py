"""``publisher feeds``: write the RSS, Atom and JSON feeds (and the pages beside them).

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import click

from publisher.ops.common import (
    _app,
    _print_feeds,
)


@click.command()
@click.option(
    "--force", is_flag=True, help="Rebuild every file, not only those whose inputs changed."
)
@click.pass_context
def feeds(ctx: click.Context, force: bool) -> None:
    """Write the RSS, Atom and JSON feeds into [feeds] output_dir (only files that changed).

    Also per-tag and per-author feeds, archive pages, feeds.opml and index.html as
    configured, and a WebSub ping when feeds changed. A failing hub never fails the
    build: it is warned about once per run of failures, then noted when it recovers.
    """
    from publisher.services import feeds as feed_service

    _print_feeds(feed_service.write_feeds(_app(ctx), force=force))
