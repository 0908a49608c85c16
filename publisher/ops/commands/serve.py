"""``publisher serve``: the web endpoints (subscriber pages, feeds, archive, health, metrics).

Imported only when this command runs (see publisher.ops.cli.COMMANDS): heavy modules are
imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path

import click

from publisher.ops.common import (
    _app,
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web endpoints until interrupted (behind your HTTPS reverse proxy).

    Subscribers: /subscribe (double opt-in), /confirm/TOKEN, /unsubscribe/TOKEN (RFC 8058
    one-click POST), /preferences/TOKEN (digests, frequency, topics, export, erasure).
    Readers: the feeds under /feeds/ and the issue archive under /archive/, with their
    media types, ETag and Last-Modified (304 on a conditional GET) and gzip.
    Monitoring: /healthz (200 while the store answers, else 503; for load balancers) and
    /metrics in the Prometheus format ([web] metrics, metrics_token_env; keep it private).
    Integrations: the HTTP API under /api/v1/ (Authorization: Bearer TOKEN from `publisher
    tokens create`; its OpenAPI document at /api/v1/openapi.json; [api] enabled,
    requests_per_minute). "Send now" there only queues: serve never sends mail.
    """
    import os

    import uvicorn

    from publisher.config import CONFIG_ENV

    # Opened here so that a bad config or store fails with one line before the server starts.
    _app(ctx)
    # The HTTP application is loaded by name, the way any ASGI server loads it: the CLI and
    # the HTTP doors stay independent of each other (README "Package map"), and `uvicorn
    # --factory publisher.server:app_from_environment` serves the same application.
    os.environ[CONFIG_ENV] = str(Path(ctx.obj).resolve())
    uvicorn.run(
        "publisher.server:app_from_environment", factory=True, host=host, port=port, log_level="info"
    )
