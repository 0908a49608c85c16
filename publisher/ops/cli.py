"""The ``publisher`` command (terminal I/O). Each command's docstring is its --help text.

Exit codes: 0 ok, 1 an operational error (one line on stderr), 2 a usage error.

The commands live one module per noun in ``publisher.ops.commands`` and are imported
lazily, as pip does in ``pip/_internal/commands/__init__.py``: ``COMMANDS`` maps each name
to its module, attribute and one-line summary, so ``publisher --help`` lists them without
importing any (nor SQLAlchemy, which the store pulls in), and ``publisher send`` imports
only the send module. To add a command, write ``publisher/ops/commands/<noun>.py`` with a
``@click.command()`` (or ``@click.group()``) and add its entry to ``COMMANDS``;
tests/test_cli_layout.py checks the two agree.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any, NamedTuple

import click

from publisher import __version__
from publisher.errors import PublisherError


class CommandInfo(NamedTuple):
    """Where a command lives, and its --help summary (the first paragraph of its docstring)."""

    module: str
    attr: str
    summary: str


_P = "publisher.ops.commands."

COMMANDS: dict[str, CommandInfo] = {
    "bounces": CommandInfo(_P + "bounces", "bounces", "Process bounce messages (delivery status notifications) and ARF spam complaints."),
    "check": CommandInfo(_P + "check", "check", "Check everything before a send and print a checklist; exit 1 if anything fails."),
    "collect": CommandInfo(_P + "collect", "collect", "Pull new and edited articles from every [[sources]] entry into the store."),
    "db": CommandInfo(_P + "db", "db", "Database maintenance."),
    "feeds": CommandInfo(_P + "feeds", "feeds", "Write the RSS, Atom and JSON feeds into [feeds] output_dir (only files that changed)."),
    "init": CommandInfo(_P + "init", "init", "Create a new site in DIR (default: the current folder)."),
    "issues": CommandInfo(_P + "issues", "issues", "List, inspect, pause, resume, cancel and resend issues."),
    "operators": CommandInfo(_P + "operators", "operators", "Add, list and remove console operators; change their password; reset their 2FA."),
    "preview": CommandInfo(_P + "send", "preview", "Render DIGEST's next issue exactly as it would be sent; nothing is stored or sent."),
    "purge": CommandInfo(_P + "purge", "purge", "Remove delivery rows of finished issues, audit entries and webhook history older than AGE, and expired sessions and API keys; per-issue counts are kept."),
    "run": CommandInfo(_P + "run", "run", "Collect, write feeds and send every due digest."),
    "send": CommandInfo(_P + "send", "send", "Create DIGEST's issue for the current period (if it has new articles) and deliver it."),
    "serve": CommandInfo(_P + "serve", "serve", "Serve the web endpoints until interrupted (behind your HTTPS reverse proxy)."),
    "status": CommandInfo(
        _P + "status",
        "status",
        "Show each digest's next send and last issue, recent issues with delivery counts, "
        "deliveries held by a send_window, paused issues with their queued count, failing "
        "sources, the size of the retry queue, each SMTP relay's health (healthy, or unhealthy "
        "with its last error and when it is re-checked), limits paused now, and the sending "
        "processes (workers) with their state (alive, gone, unknown) and the claims they hold.",
    ),
    "stats": CommandInfo(_P + "stats", "stats", "Show ISSUE's clicks and opens: human and automated, per article and per link."),
    "subscribers": CommandInfo(_P + "subscribers", "subscribers", "Add, change, import, list, remove and export subscribers."),
    "tokens": CommandInfo(_P + "tokens", "tokens", "Create, list and revoke tokens for the HTTP API."),
    "webhooks": CommandInfo(_P + "webhooks", "webhooks", "List the outgoing webhooks, deliver due events, show their history, turn one back on."),
    "worker": CommandInfo(_P + "worker", "worker", "Send the queued deliveries of every open issue, of every digest, until SIGTERM."),
}  # fmt: skip


def load_command(name: str) -> click.Command:
    """Import the module of command NAME and return its click command."""
    info = COMMANDS[name]
    command = getattr(importlib.import_module(info.module), info.attr)
    assert isinstance(command, click.Command), info
    return command


def _short_help(summary: str, limit: int) -> str:
    """SUMMARY cut to LIMIT columns the way click cuts a command's docstring in a listing."""
    return click.Command(None, help=summary).get_short_help_str(limit)


class _Group(click.Group):
    """The root group: commands come from COMMANDS, imported on first use.

    Also turns PublisherError (and database errors) into one line and exit code 1.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            # click (8.4+) suggests "Did you mean ...?" from self.commands, which a lazy
            # group leaves empty: suggest from the registry instead.
            no_such = getattr(click.exceptions, "NoSuchCommand", None)
            if no_such is None or not isinstance(exc, no_such):
                raise
            raise no_such(exc.command_name, possibilities=COMMANDS, ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The summaries come from the registry, so --help imports no command module;
        # shortened exactly as click shortens a docstring for the listing.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _short_help(COMMANDS[name].summary, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            raise click.ClickException(str(exc)) from exc
        except Exception as exc:
            # SQLAlchemy is loaded only by the commands that open the store: if it is not
            # in sys.modules, this cannot be one of its errors.
            sa_exc = sys.modules.get("sqlalchemy.exc")
            if sa_exc is None or not isinstance(exc, sa_exc.SQLAlchemyError):
                raise
            from publisher.store import translate

            raise click.ClickException(str(translate(exc))) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file. Default: $PUBLISHER_CONFIG, else ./config.toml.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="Log lines on stderr: human-readable, or one JSON object per line for log shippers.",
)
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, log_format: str = "human") -> None:
    """Collect articles, write RSS/Atom/JSON feeds, and send email digests.

    Everything is configured in config.toml; see README.md for every key.
    """
    # Imported here, not at the top: `publisher --help` runs no callback and needs neither.
    from publisher import config as config_module
    from publisher.ops import logs

    logs.setup(log_format, logging.WARNING - 10 * min(verbose, 2))
    ctx.obj = config_path or config_module.default_path()


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="publisher")
