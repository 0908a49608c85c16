"""``publisher operators ...``: add, list and remove the console's operators, change their
password, reset their second factor.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import sys

import click

from publisher.models import ROLES
from publisher.ops.common import _app, _console, cli_actor

_PASSWORD_STDIN_HELP = (
    "Read the password from standard input (for scripts: "
    '`printf %s "$PW" | publisher operators ...`) instead of prompting.'
)


def read_password(from_stdin: bool) -> str:
    """The new password: all of standard input less one final newline, or typed twice at a
    hidden prompt. With neither a terminal nor --password-stdin, a clear error."""
    if from_stdin:
        text = sys.stdin.read()
        return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not sys.stdin.isatty():
        raise click.UsageError(
            "no terminal to type the password at: pipe it in with --password-stdin"
        )
    return str(click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password"))


@click.group()
def operators() -> None:
    """Add, list and remove console operators; change their password; reset their 2FA."""


@operators.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="viewer reads everything; editor also manages subscribers and sends test copies; "
    "admin also sends, cancels and resends issues, and manages operators and tokens.",
)
@click.option("--password-stdin", is_flag=True, help=_PASSWORD_STDIN_HELP)
@click.pass_context
def operators_add(ctx: click.Context, email: str, role: str, password_stdin: bool) -> None:
    """Add EMAIL as an operator with ROLE; the password is prompted for (twice, hidden).

    Passwords need at least 12 characters and are stored as argon2 hashes. The operator
    enrols a second factor (TOTP) at their first login to the console.
    """
    from publisher.services import operators as service

    password = read_password(password_stdin)
    operator = service.add_operator(_app(ctx), email, role, password, actor=cli_actor())
    click.echo(f"added operator {operator.email} ({operator.role})")


@operators.command("list")
@click.pass_context
def operators_list(ctx: click.Context) -> None:
    """List the operators: address, role, second factor, created, last login."""
    from rich.table import Table

    from publisher.services import operators as service

    rows = service.list_operators(_app(ctx))
    if not rows:
        click.echo("no operators (add one: publisher operators add EMAIL --role admin)")
        return
    table = Table("email", "role", "2fa", "created", "last login")
    for op in rows:
        table.add_row(
            op.email,
            op.role,
            "yes" if op.two_factor else "no",
            f"{op.created_at:%Y-%m-%d %H:%M}",
            "never" if op.last_login_at is None else f"{op.last_login_at:%Y-%m-%d %H:%M}",
        )
    _console().print(table)


@operators.command("remove")
@click.argument("email")
@click.pass_context
def operators_remove(ctx: click.Context, email: str) -> None:
    """Remove the operator EMAIL: they can no longer log in."""
    from publisher.services import operators as service

    address = service.normalize_email(email)
    service.remove_operator(_app(ctx), address, actor=cli_actor())
    click.echo(f"removed operator {address}")


@operators.command("passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help=_PASSWORD_STDIN_HELP)
@click.pass_context
def operators_passwd(ctx: click.Context, email: str, password_stdin: bool) -> None:
    """Set a new password for the operator EMAIL (prompted for twice, hidden)."""
    from publisher.services import operators as service

    app = _app(ctx)
    operator = service.get_operator(app, email)  # before the prompt: a typo fails at once
    service.set_password(app, operator.email, read_password(password_stdin), actor=cli_actor())
    click.echo(f"password changed for {operator.email}")


@operators.command("reset-2fa")
@click.argument("email")
@click.pass_context
def operators_reset_2fa(ctx: click.Context, email: str) -> None:
    """Clear the operator EMAIL's second factor (TOTP and recovery codes).

    They enrol a new one at their next login to the console: use this when they lost
    their authenticator and their recovery codes.
    """
    from publisher.services import operators as service

    app = _app(ctx)
    address = service.normalize_email(email)
    had = service.reset_2fa(app, address, actor=cli_actor())
    click.echo(
        f"2fa reset for {address}: they enrol again at their next login"
        if had
        else f"{address} had no second factor; nothing to reset"
    )
