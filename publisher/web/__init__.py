"""The web door (HTTP I/O): subscriber pages, feeds and the archive, as a Starlette app.

For feed readers it serves the generated feeds under ``/feeds/`` and the "view in
browser" archive under ``/archive/`` (media types, ETag/Last-Modified, 304, gzip). For
subscribers it is the double opt-in sign-up, the RFC 8058 one-click unsubscribe and the
preferences page. Pages are server-rendered Jinja2 (``templates/web/``) with no script.

Modules:

- ``app``: :func:`create_app`, the factory (routes, middleware, error pages), and
  :func:`app_from_environment`, the same for ASGI servers (``publisher serve`` runs it);
- ``common``: what the pages share: the :class:`~publisher.web.common.WebContext` kept in
  ``request.app.state.web``, page rendering, CSRF, the bad-link and error pages;
- ``guard``: security headers on every response and the request body cap;
- ``ratelimit``: the in-memory sliding-window rate limiter;
- ``static``: ``/feeds/``, ``/archive/``, ``/static/web.css`` and ``/``;
- ``subscribe``: ``/subscribe``, the sign-up form;
- ``confirm``: ``/confirm/<token>``, the second step of double opt-in;
- ``unsubscribe``: ``/unsubscribe/<token>``, including the one-click POST;
- ``preferences``: ``/preferences/<token>``: digests, frequency, topics, name, export, erasure;
- ``tracking``: ``/r/<token>`` (tracked links, 302 to the stored URL) and ``/o/<token>``
  (the open pixel);
- ``health``: ``/healthz`` for load balancers and ``/metrics`` for Prometheus.

Endpoints are plain functions; the work is done by the service layer
(:mod:`publisher.services.subscriptions`, :mod:`publisher.services.signup`) and the pure
rules of :mod:`publisher.compose.subscriptions`.

Imports: ``web`` may import services, the app, compose, store, config, models and
errors; never ``ops`` (the two doors are independent of each other).
"""

from publisher.web.app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
