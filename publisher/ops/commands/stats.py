"""``publisher stats ISSUE``: an issue's engagement, human and automated side by side.

Imported only when this command runs (see publisher.ops.cli.COMMANDS).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from publisher.ops.common import _app

if TYPE_CHECKING:
    from publisher.services.engagement_report import IssueEngagement


@click.command()
@click.argument("issue", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the figures as CSV (articles, links, totals).")
@click.pass_context
def stats(ctx: click.Context, issue: int, as_json: bool, as_csv: bool) -> None:
    """Show ISSUE's clicks and opens: human and automated, per article and per link.

    Automated hits are those of link scanners and prefetchers: HEAD requests, hits within
    bot_window_seconds of delivery, known scanner user agents, and every hit of a message
    whose hidden canary link was followed from the same client. Opens are unreliable
    (image proxies fetch every pixel); those from known proxies are shown apart. Nothing is
    counted for digests without track_clicks / track_opens.
    """
    from publisher.services import engagement_report

    app = _app(ctx)
    report = engagement_report.issue_engagement(app, issue)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    if as_csv:
        click.echo("".join(engagement_report.csv_lines(report)), nl=False)
        return
    _print(report)


def _print(report: IssueEngagement) -> None:
    """The human-readable report."""
    from publisher.services.engagement_report import OPENS_NOTE

    click.echo(f"issue #{report.issue_id} ({report.digest_id}): {report.subject}")
    click.echo(f"  sent: {report.sent}")
    if not (report.track_clicks or report.track_opens):
        click.echo("  tracking is off for this digest (track_clicks / track_opens): nothing counted")
    click.echo(f"  clicks: {report.clicks['human']} human, {report.clicks['automated']} automated")
    if report.track_opens or any(report.opens.values()):
        opens = report.opens
        click.echo(
            f"  opens (unreliable): {opens['human']} other, {opens['proxy']} by image proxies, "
            f"{opens['automated']} automated"
        )
        click.echo(f"    {OPENS_NOTE}")
    if report.articles:
        click.echo("  top articles (human / automated clicks):")
        for article in report.articles[:10]:
            click.echo(f"    {article.human:>6} / {article.automated:<6} {article.title}")
    if report.links:
        click.echo("  links (human / automated clicks):")
        for link in report.links:
            click.echo(f"    {link.human:>6} / {link.automated:<6} {link.url}")
