"""``publisher tokens ...``: create, list and revoke the HTTP API's tokens.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import click

from publisher.models import SCOPES
from publisher.ops.common import _app, _console, cli_actor


@click.group()
def tokens() -> None:
    """Create, list and revoke tokens for the HTTP API."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    required=True,
    help="read: GET only; write: also changes subscribers; send: also sends, cancels, "
    "pauses and resends issues.",
)
@click.option(
    "--expires",
    metavar="DURATION",
    default=None,
    help="Lifetime such as 90d, 12h or 2w (default: never expires).",
)
@click.pass_context
def tokens_create(ctx: click.Context, name: str, scope: str, expires: str | None) -> None:
    """Create an API token called NAME and print it, once.

    Only a hash of the token is stored: copy it now into the client's secret store. It is
    sent as `Authorization: Bearer <token>`. Lost tokens cannot be shown again: revoke it
    and create another.
    """
    from publisher.services import tokens as service

    app = _app(ctx)
    token, raw = service.create_token(
        app, name, scope, service.parse_expiry(expires), actor=cli_actor()
    )
    click.echo(raw)
    until = (
        "never expires"
        if token.expires_at is None
        else f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(
        f"created token {token.name} ({token.scope}, {until}); it is shown only this once",
        err=True,
    )


@tokens.command("list")
@click.pass_context
def tokens_list(ctx: click.Context) -> None:
    """List the tokens: name, prefix, scope, state, created, expires, last used (never the
    secret)."""
    from rich.table import Table

    from publisher.services import tokens as service

    app = _app(ctx)
    rows = service.list_tokens(app)
    if not rows:
        click.echo("no tokens (create one: publisher tokens create NAME --scope read)")
        return
    now = app.clock()
    table = Table("name", "prefix", "scope", "state", "created", "expires", "last used")
    for t in rows:
        table.add_row(
            t.name,
            f"pub_{t.prefix}_",
            t.scope,
            t.state(now),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            "never" if t.expires_at is None else f"{t.expires_at:%Y-%m-%d %H:%M}",
            "never" if t.last_used_at is None else f"{t.last_used_at:%Y-%m-%d %H:%M}",
        )
    _console().print(table)


@tokens.command("revoke")
@click.argument("name")
@click.pass_context
def tokens_revoke(ctx: click.Context, name: str) -> None:
    """Revoke the token NAME: every request with it is refused from now on."""
    from publisher.services import tokens as service

    token = service.revoke_token(_app(ctx), name, actor=cli_actor())
    click.echo(f"revoked token {token.name} ({token.scope})")
