"""``publisher db ...``: database maintenance.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import click

from publisher.ops.common import (
    _config,
)


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending schema migrations (also done automatically on first use)."""
    from publisher.store import Store

    config = _config(ctx)
    store = Store.open(config.store_url, migrate=False)
    try:
        applied = store.upgrade()
    finally:
        store.close()
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")
