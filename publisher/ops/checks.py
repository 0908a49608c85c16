"""``publisher check``: a pre-flight checklist (reads the config, templates, store; talks to
the SMTP relay without sending anything).

Each check returns a :class:`Check` with a one-line detail; :func:`run_checks` runs them in
order and never raises, so the operator sees every problem at once. Checks that need the
config are skipped (and reported failed) when the config itself does not load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path

from publisher import config as config_module
from publisher.compose import render
from publisher.config import Config
from publisher.errors import PublisherError
from publisher.models import Article, Citation


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    ok: bool
    detail: str
    warning: bool = False  # worth reading, but no reason to fail (exit status stays 0)


def sample_articles(now: datetime) -> list[Article]:
    """Two made-up articles in the shape of real ones, for rendering the templates."""
    body = (
        "<h2>What was found</h2><p>A <a href='https://example.org/study'>fictional study</a> "
        "of 120 patients.</p><blockquote><p>Promising, if early.</p></blockquote>"
    )
    return [
        Article(
            source="check",
            guid=f"sample-{i}",
            title=f"Sample Article {i}: Registry Review Finds Steady Gains",
            url=f"https://news.example.org/sample-{i}/",
            published_at=now - timedelta(hours=i),
            updated_at=now - timedelta(hours=i),
            content_html=body,
            summary="A made-up summary used only to check that the templates render.",
            author="Check Writer",
            tags=("research", "sample"),
            citations=(Citation("Example A, et al. J Examples, 2026", "https://example.org/j"),),
            id=-i,
        )
        for i in (1, 2)
    ]


def check_config(path: Path) -> tuple[Check, Config | None]:
    """Load and validate the config file."""
    try:
        config = config_module.load(path)
    except PublisherError as exc:
        return Check("config", False, str(exc)), None
    detail = (
        f"{config.path.name}: {len(config.digests)} digest(s), {len(config.sources)} source(s), "
        f"transport {config.delivery.transport}"
    )
    return Check("config", True, detail), config


def check_templates(config: Config, now: datetime) -> Check:
    """Render every digest's templates with sample articles (HTML inlined, and text)."""
    try:
        templates = render.load_templates(config.site.templates_dir)
        base = config.web.base_url.rstrip("/")
        links = render.IssueLinks(
            view_url=f"{base}/archive/check.html",
            more_url=f"{base}/archive/",
            subscribe_url=f"{base}/subscribe",
        )
        sizes = []
        for digest in config.digests:
            rendered = render.render_issue(
                templates, config.site, digest, sample_articles(now), now, links=links
            )
            if not rendered.html.strip() or not rendered.text.strip():
                return Check("templates", False, f"digest {digest.id!r}: an empty part")
            sizes.append(f"{digest.id} {len(rendered.html.encode()) // 1024} KB")
    except PublisherError as exc:
        return Check("templates", False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a template error of any kind is the finding
        return Check("templates", False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return Check(
        "templates", True, "rendered with sample data: " + (", ".join(sizes) or "no digests")
    )


def check_transport(config: Config, factory: Callable[[Config], object] | None = None) -> Check:
    """Open the transport and close it: SMTP connect, EHLO, STARTTLS and AUTH, no mail.

    With several [[relays]], each one is opened in turn, so a dead backup shows too.
    """
    from publisher.deliver.transports import make_transport

    if factory is None and config.delivery.transport == "smtp" and len(config.relay_list) > 1:
        return _check_relays(config)
    transport = (factory or make_transport)(config)
    if config.delivery.transport == "smtp":
        where = ", ".join(
            f"{r.host}:{r.port} ({r.security}{', auth ' + r.username if r.username else ''})"
            for r in config.relay_list
        )
    else:
        where = f"outbox {config.delivery.outbox_dir}"
    try:
        transport.open()  # type: ignore[attr-defined]
        transport.close()  # type: ignore[attr-defined]
    except PublisherError as exc:
        return Check(config.delivery.transport, False, str(exc))
    except OSError as exc:
        return Check(config.delivery.transport, False, f"{where}: {exc}")
    if config.delivery.transport != "smtp":
        return Check(config.delivery.transport, True, f"{where}: writable")
    return Check("smtp", True, f"{where}: {_smtp_steps(config)}, nothing sent")


def _smtp_steps(config: Config) -> str:
    """What the SMTP check really did: only a configured username means a login happened."""
    smtp = config.smtp
    steps = ["connected", "EHLO", {"starttls": "STARTTLS", "tls": "TLS"}.get(smtp.security, "")]
    done = ", ".join(step for step in steps if step)
    if smtp.username:
        return f"{done} and login accepted"
    return f"{done} accepted; no login tried ([smtp] username is not set)"


def _check_relays(config: Config) -> Check:
    """Open and close every relay; one line naming each relay and how it answered."""
    from publisher.deliver.relays import smtp_for

    parts, ok = [], True
    for relay in config.relay_list:
        smtp = smtp_for(relay)
        try:
            smtp.open()
            smtp.close()
        except PublisherError as exc:
            ok = False
            parts.append(f"{relay.label}: FAILED {exc}")
        else:
            parts.append(f"{relay.label}: connected, EHLO and login accepted")
    return Check("smtp", ok, "; ".join(parts) + "; nothing sent")


def check_store(config: Config) -> Check:
    """Open the store (applying migrations) and count what it holds; never create one."""
    from sqlalchemy.exc import SQLAlchemyError

    from publisher.store import Store, translate

    try:
        store = Store.open(config.store_url, create=False)
    except PublisherError as exc:
        return Check("store", False, str(exc))
    except SQLAlchemyError as exc:
        return Check("store", False, str(translate(exc)))
    try:
        count = store.count_articles()
        subs = sum(1 for _ in store.list_subscribers("active"))
    except SQLAlchemyError as exc:
        return Check("store", False, str(translate(exc)))
    finally:
        store.close()
    shown = config.store_url.split("@")[-1]
    return Check(
        "store",
        True,
        f"{shown}: schema up to date, {count} article(s), {subs} active subscriber(s)",
    )


def check_schedules(config: Config, now: datetime) -> list[Check]:
    """Each digest's next fire time, and a warning when crontab semantics moved its schedule."""
    from zoneinfo import ZoneInfo

    from publisher.compose import planning
    from publisher.config import cron

    results = []
    for digest in config.digests:
        nxt = planning.next_fire_time(digest, now)
        when = (
            f"next {nxt.astimezone(ZoneInfo(digest.timezone)):%Y-%m-%d %H:%M} {digest.timezone}"
            if nxt
            else "never fires again"
        )
        results.append(Check("schedule", True, f"{digest.id}: {digest.schedule!r}, {when}"))
        moved = cron.moved_by_translation(digest.schedule)
        if moved:
            results.append(Check("schedule", True, f"{digest.id}: {moved}", warning=True))
    return results


def check_metrics(config: Config) -> list[Check]:
    """A warning when ``/metrics`` wants a token from a variable that is unset (it then
    refuses every scrape); nothing otherwise."""
    name = config.web.metrics_token_env
    if not config.web.metrics or not name or config_module.secret_from_env(name, what=name):
        return []
    detail = f"[web] metrics_token_env names {name}, which is unset: /metrics refuses every scrape"
    return [Check("metrics", True, detail, warning=True)]


def check_webhooks(config: Config) -> list[Check]:
    """One line per [[webhooks]] entry; a failure when its secret variable is unset (every
    event to it would fail until it is set)."""
    results = []
    for hook in config.webhooks:
        if config_module.secret_from_env(hook.secret_env, what=hook.secret_env):
            results.append(Check("webhook", True, f"{hook.label}: {hook.url} ({len(hook.events)} event(s))"))
        else:
            detail = f"{hook.label}: secret_env names {hook.secret_env}, which is unset: nothing can be signed"
            results.append(Check("webhook", False, detail))
    return results


def check_hooks(config: Config) -> list[Check]:
    """One line per enabled [hooks.<provider>]; a failure when a variable its ``*_env``
    keys name is unset (every request from that provider would get 503 until it is set)."""
    results = []
    for name, table in config.hooks.enabled().items():
        envs = [getattr(table, f.name) for f in fields(table) if f.name.endswith("_env")]
        unset = [env for env in envs if not config_module.secret_from_env(env, what=env)]
        if unset:
            detail = f"{name}: {', '.join(unset)} unset: POST /hooks/{name} answers 503"
            results.append(Check("hooks", False, detail))
        else:
            results.append(Check("hooks", True, f"{name}: POST /hooks/{name}"))
    return results


def run_checks(path: Path, now: datetime) -> list[Check]:
    """Every check, in order: config, templates, transport, store, then each schedule."""
    first, config = check_config(path)
    if config is None:
        skipped = [
            Check(n, False, "skipped: the config does not load")
            for n in ("templates", "transport", "store")
        ]
        return [first, *skipped]
    return [
        first,
        check_templates(config, now),
        check_transport(config),
        check_store(config),
        *check_metrics(config),
        *check_webhooks(config),
        *check_hooks(config),
        *check_schedules(config, now),
    ]
