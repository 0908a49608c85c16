"""The composition root (no I/O until used): config, store, clock, templates and transports wired.

Every door (the CLI in :mod:`publisher.ops`, the web in :mod:`publisher.web`) opens one
:class:`App` with :func:`open_app` and passes it to the services in :mod:`publisher.services`.
Nothing below this module knows how the parts are chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from publisher import clock as clock_module
from publisher.compose import render
from publisher.config import Config, secret_from_env
from publisher.deliver.engine import DeliveryResult
from publisher.deliver.liveness import SenderSession
from publisher.deliver.transports import Transport, make_transport
from publisher.models import Issue
from publisher.store import Store


@dataclass
class App:
    """The wired application: config, store, clock and (lazily) templates and transport."""

    config: Config
    store: Store
    clock: Callable[[], datetime] = clock_module.now
    transport_factory: Callable[[], Transport] | None = None
    # Makes a progress callback for one issue's delivery run (the CLI's bar or log lines).
    progress: Callable[[Issue], Callable[[DeliveryResult], None]] | None = None
    # This process's registration as a sender (``send``, ``run`` and ``worker`` open one
    # for their whole life); without it each delivery run registers for its own length.
    session: SenderSession | None = None
    _templates: render.Templates | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # The store writes a webhook event only for the types some [[webhooks]] entry wants.
        routes: dict[str, tuple[str, ...]] = {}
        for hook in self.config.webhooks:
            for event in hook.events:
                routes[event] = (*routes.get(event, ()), hook.label)
        self.store.webhook_routes = routes

    @property
    def templates(self) -> render.Templates:
        """Templates, loaded on first use."""
        if self._templates is None:
            self._templates = render.load_templates(self.config.site.templates_dir)
        return self._templates

    def new_transport(self) -> Transport:
        """A fresh transport for one sending thread."""
        if self.transport_factory is not None:
            return self.transport_factory()
        return make_transport(self.config, self.store)

    @property
    def site_host(self) -> str:
        """The site's host name, used in tag: URIs."""
        return urlsplit(self.config.site.url).hostname or "localhost"

    def secret(self) -> str:
        """The signing secret: from ``[web] secret_env``, else generated once per store."""
        return secret_from_env(self.config.web.secret_env, what="[web] secret_env") or (
            self.store.signing_secret()
        )


def open_app(
    config: Config, clock: Callable[[], datetime] = clock_module.now, *, create: bool = True
) -> App:
    """Open the store (migrating it) and wire the application.

    ``create=False`` (read-only commands): a missing SQLite file is an error, not created.
    """
    return App(config=config, store=Store.open(config.store_url, create=create), clock=clock)
