"""``publisher send`` and ``publisher preview``: deliver a digest's issue, or render it to a file.

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from publisher.ops.common import (
    _app,
    _print_send,
    _registered,
    _rel,
    normalize_email,
)


@click.command()
@click.argument("digest")
@click.option("--dry-run", is_flag=True, help="Count what a send would queue and list its roll-ups; write and send nothing.")
@click.option("--to", "to", metavar="EMAIL", help="Send one [TEST] copy of the next issue to EMAIL; record nothing.")
@click.option("--queue-only", is_flag=True, help="Create the issue and queue its deliveries; `publisher worker` sends them.")
@click.pass_context
def send(ctx: click.Context, digest: str, dry_run: bool, to: str | None, queue_only: bool = False) -> None:
    """Create DIGEST's issue for the current period (if it has new articles) and deliver it.

    The period is the digest's latest scheduled time at or before now. Running send
    again in the same period sends nothing; queued retries of earlier issues are resumed.
    Messages held by the digest's send_window are reported as "N held until HH:MM".
    --dry-run writes nothing and counts with the same query a real send plans with
    (topics, cadence, quiet hours), listing the roll-up issues it would create.
    --queue-only prints how many deliveries it queued. With --to, one test copy (subject prefixed [TEST]) goes to that address through the
    configured transport, and neither an issue nor a delivery is recorded.
    """
    from publisher.services import previews, sending

    app = _app(ctx)
    if to:
        shown = previews.send_test(app, digest, normalize_email(to))
        click.echo(f"test      {shown.label}: [TEST] {shown.rendered.subject!r} sent to {to}")
        return
    from publisher.ops.progress import attached
    from publisher.ops.worker import stop_on_signals

    # SIGTERM/SIGINT: finish the messages in flight, record them, leave the rest queued, exit 0.
    with stop_on_signals() as stop, attached(app, sys.stderr), _registered(app, "send", dry_run or queue_only):
        reports = sending.send_digest(app, digest, dry_run=dry_run, stop=stop, queue_only=queue_only)
    for report in reports:
        _print_send(app, report)
    if stop.is_set():
        click.echo("stopped   by a signal; the rest stays queued for the next run", err=True)


@click.command()
@click.argument("digest")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default preview-DIGEST.html or .txt).")
@click.option("--text", "as_text", is_flag=True, help="Write the plain-text part instead of the HTML.")
@click.option("--subscriber", metavar="EMAIL", help="Personalise for this subscriber (real signed links).")
@click.option("--open", "open_browser", is_flag=True, help="Open the result in the default browser.")
@click.pass_context
def preview(
    ctx: click.Context, digest: str, out: Path | None, as_text: bool, subscriber: str | None, open_browser: bool
) -> None:
    """Render DIGEST's next issue exactly as it would be sent; nothing is stored or sent.

    When there are no new articles, the latest issue is rendered instead.
    """
    from publisher.services import previews

    app = _app(ctx)
    result = previews.preview_issue(app, digest)
    person = previews.preview_personal(app, result, normalize_email(subscriber) if subscriber else None)
    html_part, text_part = previews.personalized_parts(result, person)
    out = out or Path(f"preview-{digest}.{'txt' if as_text else 'html'}")
    out.write_text(text_part if as_text else html_part, encoding="utf-8")
    click.echo(
        f"preview   {result.label}: {len(result.articles)} article(s), "
        f"subject {result.rendered.subject!r} -> {_rel(out.resolve())}"
    )
    if open_browser:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())
