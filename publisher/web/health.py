"""``/healthz`` for load balancers and ``/metrics`` for Prometheus (HTTP I/O; store reads).

``/healthz`` answers 200 ``{"status": "ok"}`` when the store answers a trivial query and
503 ``{"status": "unavailable", "reason": ...}`` when it does not (the detail goes to the
server log, not to whoever asks). It takes no login, has no rate limit and is never cached,
so a load balancer may poll it every second.

``/metrics`` is the Prometheus text exposition (OpenMetrics when the scraper asks for it),
built by :class:`FiguresCollector`, a ``prometheus_client`` collector that reads the figures
of :func:`publisher.services.monitoring.figures` from the store at each scrape. Nothing is
counted in this process: the senders are other processes, often on other hosts. It is on
unless ``[web] metrics = false``; with ``[web] metrics_token_env`` it requires
``Authorization: Bearer <token>`` (and refuses everyone while that variable is unset).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.config import Config
from publisher.services import monitoring
from publisher.services.monitoring import Figures
from publisher.web.common import WebContext, context, offload

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
UNAVAILABLE = "the store did not answer"


def routes(config: Config) -> list[BaseRoute]:
    """``/healthz`` always; ``/metrics`` unless ``[web] metrics = false``."""
    found: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if config.web.metrics:
        found.append(Route("/metrics", metrics, methods=["GET"]))
    return found


def _ping(ctx: WebContext) -> None:
    ctx.app.store.ping()  # opening the app may fail too (a bad URL, a store that is down)


async def healthz(request: Request) -> Response:
    """200 when the store answers a trivial query, else 503 with a reason."""
    try:
        await offload(_ping, context(request))
    except Exception as exc:  # noqa: BLE001 - any failure means "do not send traffic here"
        log.warning("healthz: %s: %s", UNAVAILABLE, exc)
        return JSONResponse({"status": "unavailable", "reason": UNAVAILABLE}, 503, headers=NO_STORE)
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


class FiguresCollector(Collector):
    """Turns the monitoring figures, read at each scrape by ``read``, into gauges."""

    def __init__(self, read: Callable[[], Figures]) -> None:
        self.read = read

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read the store (the names come with each scrape)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every gauge, from one reading of the figures."""
        f = self.read()
        queue = GaugeMetricFamily(
            "publisher_queue_depth",
            "Deliveries waiting: queued (of issues being sent) or sending (claimed by a worker).",
            labels=["state"],
        )
        queue.add_metric(["queued"], f.queued)
        queue.add_metric(["sending"], f.sending)
        yield queue
        sent = GaugeMetricFamily(
            "publisher_sent_messages",
            "Deliveries recorded sent in the trailing window (the send rate), from the ledger.",
            labels=["window"],
        )
        for window, count in f.sent.items():
            sent.add_metric([window], count)
        yield sent
        relays = GaugeMetricFamily(
            "publisher_relay_healthy",
            "1 when the relay is healthy, 0 while it is set aside (shared relay health).",
            labels=["relay"],
        )
        for label, healthy in f.relays.items():
            relays.add_metric([label], 1 if healthy else 0)
        yield relays
        workers = GaugeMetricFamily(
            "publisher_workers",
            "Registered sending processes by liveness (alive, unknown, gone).",
            labels=["state"],
        )
        for state, count in f.workers.items():
            workers.add_metric([state], count)
        yield workers
        for name, text, value in (
            ("publisher_open_issues", "Issues being sent (status sending).", f.open_issues),
            ("publisher_paused_issues", "Issues paused (by an operator or by auto-pause).", f.paused_issues),
            ("publisher_retry_queue", "Queued deliveries waiting for a retry.", f.retry_queue),
            ("publisher_failing_sources", "Sources whose last run failed.", f.failing_sources),
        ):
            yield GaugeMetricFamily(name, text, value=value)


def _authorized(request: Request, token_env: str) -> bool:
    """Whether the request may read /metrics (always, when no token is configured)."""
    if not token_env:
        return True
    expected = os.environ.get(token_env, "")
    if not expected:
        log.warning("/metrics refused: [web] metrics_token_env names %s, which is unset", token_env)
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


def _exposition(ctx: WebContext, accept: str) -> tuple[bytes, str]:
    ctx.app.store.ping()  # a vanished SQLite file would still answer from pooled connections
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(lambda: monitoring.figures(ctx.app)))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


async def metrics(request: Request) -> Response:
    """The figures in the Prometheus exposition format; 401 without the right token,
    503 when the store does not answer."""
    ctx = context(request)
    if not _authorized(request, ctx.config.web.metrics_token_env):
        return PlainTextResponse(
            "a bearer token is required\n",
            401,
            headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    try:
        body, content_type = await offload(_exposition, ctx, request.headers.get("accept", ""))
    except Exception as exc:  # noqa: BLE001 - a failed scrape, not a crashed server
        log.warning("/metrics: %s: %s", UNAVAILABLE, exc)
        return PlainTextResponse(f"{UNAVAILABLE}\n", 503, headers=NO_STORE)
    return Response(body, headers={**NO_STORE, "Content-Type": content_type})
