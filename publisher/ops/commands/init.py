"""``publisher init``: scaffold a new site.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path

import click

from publisher import config as config_module
from publisher.ops.common import (
    _rel,
    normalize_email,
)


@click.command()
@click.argument(
    "folder", metavar="[DIR]", default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml.")
@click.option(
    "--email",
    metavar="EMAIL",
    default="you@example.org",
    show_default=True,
    help='The first subscriber, so the first run has someone to write to ("" for none).',
)
def init(folder: Path, force: bool, email: str) -> None:
    """Create a new site in DIR (default: the current folder).

    Writes a commented config.toml (the file transport, SQLite, a Markdown source), an
    example article in content/ and an empty templates/ folder for overrides, then adds
    EMAIL as the first subscriber, so that `publisher run --once` in DIR collects the
    article, writes the feeds and writes a message to outbox/. An existing config.toml is
    kept unless --force is given; an existing article or templates/ folder is always kept.
    """
    from publisher import clock
    from publisher.app import open_app
    from publisher.ops import scaffold

    address = normalize_email(email) if email else ""  # a bad address fails before writing
    report = scaffold.init_site(folder, clock.now(), force=force)
    labelled = (("created", report.created), ("replaced", report.replaced), ("kept", report.kept))
    for label, paths in labelled:
        for path in paths:
            click.echo(f"{label:<9} {_rel(path)}{'/' if path.is_dir() else ''}")
    config = config_module.load(folder / scaffold.CONFIG_NAME)
    if address:
        app = open_app(config)
        try:
            ids = [d.id for d in config.digests]
            subscriber, created = app.store.add_subscriber(address, "", ids, app.clock())
        finally:
            app.store.close()
        state = "added" if created else "already present"
        click.echo(f"subscriber {subscriber.email} {state} ({', '.join(ids)})")
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {_rel(folder)} && "
    click.echo(f"next      {where}publisher run --once")
