"""Checks that need more than a type: choices, ranges, URLs, cron, time zones, uniqueness.

Pure: no I/O. :func:`validate` runs once the sections are built, section by section in the
order of the file's documentation, and raises the first ConfigError it finds, prefixed with
``file:line: key`` by the ``w`` callable (:func:`publisher.config.locate.where`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.config.hooks import validate_hooks
from publisher.config.locate import Locator, where
from publisher.config.sections import (
    FEED_FORMATS,
    SMTP_SECURITY,
    SOURCE_TYPES,
    TRANSPORTS,
    WEBHOOK_EVENTS,
    AdminConfig,
    ApiConfig,
    BouncesConfig,
    Config,
    DigestConfig,
    ScheduleConfig,
    SourceConfig,
    WebConfig,
)
from publisher.config.values import (
    check_choice,
    check_reply_to,
    check_url,
    parse_duration,
    parse_window,
)
from publisher.errors import ConfigError

Where = Callable[..., str]


def validate(config: Config, file: Path, locator: Locator) -> None:
    """Check ``config`` (read from ``file``) beyond types; raise the first ConfigError."""
    w: Where = lambda *p: where(file, locator, p)  # noqa: E731
    _validate_feeds(config, w)
    _validate_delivery(config, w)
    _validate_bounces(config.bounces, w)
    _validate_sources(config.sources, w)
    _validate_digests(config.digests, config.site.title, w)
    _validate_schedule(config.schedule, w)
    _validate_web(config.web, w)
    _validate_relays(config, w)
    _validate_api(config.api, w)
    _validate_webhooks(config, w)
    _validate_admin(config.admin, w)
    validate_hooks(config.hooks, w)


def _validate_feeds(config: Config, w: Where) -> None:
    """The public URLs ([site] url, [web] base_url) and [feeds]: formats, sizes, WebSub."""
    check_url(config.site.url, w("site", "url"))
    check_url(config.web.base_url, w("web", "base_url"))
    if config.feeds.public_url:
        check_url(config.feeds.public_url, w("feeds", "public_url"))
    for fmt in config.feeds.formats:
        check_choice(fmt, FEED_FORMATS, w("feeds", "formats"))
    if config.feeds.limit < 1:
        raise ConfigError(f"{w('feeds', 'limit')}: must be at least 1")
    if not 1 <= config.feeds.ttl <= 10080:
        raise ConfigError(f"{w('feeds', 'ttl')}: must be 1 to 10080 minutes (a week)")
    if not 1 <= config.feeds.archive_page_size <= 1000:
        raise ConfigError(f"{w('feeds', 'archive_page_size')}: must be 1 to 1000")
    if config.feeds.websub_hub:
        check_url(config.feeds.websub_hub, w("feeds", "websub_hub"))
    if not 0 < config.feeds.websub_timeout <= 120:
        raise ConfigError(f"{w('feeds', 'websub_timeout')}: must be more than 0 and at most 120")


def _validate_delivery(config: Config, w: Where) -> None:
    """[delivery] and [smtp]: a known transport and security, positive counts, DKIM, reply_to."""
    check_choice(config.delivery.transport, TRANSPORTS, w("delivery", "transport"))
    check_choice(config.smtp.security, SMTP_SECURITY, w("smtp", "security"))
    for key in ("connections", "batch_size", "max_attempts", "throttle_seconds", "lease_seconds"):
        if getattr(config.delivery, key) < 1:
            raise ConfigError(f"{w('delivery', key)}: must be at least 1")
    dkim = config.delivery.dkim
    if dkim is not None and (dkim.private_key_path is None) == (not dkim.private_key_env):
        raise ConfigError(
            f"{w('delivery.dkim')}: set exactly one of private_key_path and private_key_env"
        )
    if config.delivery.reply_to:
        check_reply_to(config.delivery.reply_to, w("delivery", "reply_to"))
    _check_pause(config.delivery.pause_bounce_rate, config.delivery.pause_complaint_rate,
                 config.delivery.pause_min_sent, lambda k: w("delivery", k))  # fmt: skip


def _check_pause(bounce: float | None, complaint: float | None, min_sent: int | None,
                 at: Callable[[str], str]) -> None:  # fmt: skip
    """Auto-pause keys: rates are fractions in (0, 1]; pause_min_sent at least 1."""
    for key, rate in (("pause_bounce_rate", bounce), ("pause_complaint_rate", complaint)):
        if rate is not None and not 0 < rate <= 1:
            raise ConfigError(f"{at(key)}: must be a fraction more than 0 and at most 1 "
                              "(0.05 is 5%)")  # fmt: skip
    if min_sent is not None and min_sent < 1:
        raise ConfigError(f"{at('pause_min_sent')}: must be at least 1")


def _validate_bounces(bounces: BouncesConfig, w: Where) -> None:
    """[bounces]: a known IMAP security, a poll interval, a username with a host."""
    check_choice(bounces.imap_security, SMTP_SECURITY, w("bounces", "imap_security"))
    if bounces.poll_minutes < 1:
        raise ConfigError(f"{w('bounces', 'poll_minutes')}: must be at least 1")
    if bounces.imap_host and not bounces.imap_username:
        raise ConfigError(f"{w('bounces', 'imap_username')}: required when imap_host is set")


def _validate_sources(sources: tuple[SourceConfig, ...], w: Where) -> None:
    """[[sources]]: a known type with its path or URL, unique names, positive limits."""
    names: set[str] = set()
    for i, source in enumerate(sources):
        check_choice(source.type, SOURCE_TYPES, w("sources", i, "type"))
        if source.name in names:
            raise ConfigError(f"{w('sources', i, 'name')}: duplicate source name {source.name!r}")
        names.add(source.name)
        if source.type == "markdown" and source.path is None:
            raise ConfigError(f"{w('sources', i)}: a markdown source needs 'path'")
        if source.type == "feed":
            if not source.url:
                raise ConfigError(f"{w('sources', i)}: a feed source needs 'url'")
            check_url(source.url, w("sources", i, "url"))
        for key in ("initial_items", "max_bytes"):
            if getattr(source, key) < 1:
                raise ConfigError(f"{w('sources', i, key)}: must be at least 1")
        if source.timeout <= 0:
            raise ConfigError(f"{w('sources', i, 'timeout')}: must be more than 0 seconds")


def _validate_digests(digests: tuple[DigestConfig, ...], site_title: str, w: Where) -> None:
    """[[digests]]: unique ids of a safe form, then each entry's own settings."""
    ids: set[str] = set()
    for i, digest in enumerate(digests):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", digest.id):
            raise ConfigError(
                f"{w('digests', i, 'id')}: {digest.id!r} must be lowercase letters, digits, - or _"
            )
        if digest.id in ids:
            raise ConfigError(f"{w('digests', i, 'id')}: duplicate digest id {digest.id!r}")
        ids.add(digest.id)
        _validate_digest(digest, i, site_title, w)


def _validate_digest(digest: DigestConfig, i: int, site_title: str, w: Where) -> None:
    """One [[digests]] entry: time zone, cron schedule, sizes, subject fields, catch-up, window."""
    # Imported here, not at the top: cron pulls in APScheduler, which importing the config
    # package alone should not load.
    from publisher.config import cron

    try:
        ZoneInfo(digest.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(
            f"{w('digests', i, 'timezone')}: unknown time zone {digest.timezone!r}"
        ) from exc
    try:
        cron.trigger(digest.schedule, digest.timezone)
    except cron.CronError as exc:
        raise ConfigError(
            f"{w('digests', i, 'schedule')}: {digest.schedule!r} is not a valid cron "
            f"expression ({exc})"
        ) from exc
    if digest.max_articles < 1:
        raise ConfigError(f"{w('digests', i, 'max_articles')}: must be at least 1")
    if digest.excerpt_words < 5:
        raise ConfigError(f"{w('digests', i, 'excerpt_words')}: must be at least 5")
    if digest.max_html_kb < 20:
        raise ConfigError(f"{w('digests', i, 'max_html_kb')}: must be at least 20")
    try:
        digest.subject.format(title=digest.title, date="", site=site_title, count=0, stories="")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"{w('digests', i, 'subject')}: {digest.subject!r} uses an unknown field {exc} "
            "(use {title}, {date}, {site}, {count} or {stories})"
        ) from exc
    if digest.catch_up:
        parse_duration(digest.catch_up, w("digests", i, "catch_up"))
    if digest.send_window:
        parse_window(digest.send_window, w("digests", i, "send_window"))
    _check_pause(digest.pause_bounce_rate, digest.pause_complaint_rate, digest.pause_min_sent,
                 lambda k: w("digests", i, k))  # fmt: skip
    _validate_engagement(digest, i, w)


def _validate_engagement(digest: DigestConfig, i: int, w: Where) -> None:
    """The engagement keys: a retention of 1 day to 10 years, a bot window of 0 s to 1 h."""
    if not 1 <= digest.retention_days <= 3650:
        raise ConfigError(f"{w('digests', i, 'retention_days')}: must be 1 to 3650 days")
    if not 0 <= digest.bot_window_seconds <= 3600:
        raise ConfigError(f"{w('digests', i, 'bot_window_seconds')}: must be 0 to 3600 seconds")
    if digest.individual_tracking and not (digest.track_clicks or digest.track_opens):
        raise ConfigError(
            f"{w('digests', i, 'individual_tracking')}: needs track_clicks or track_opens "
            "(there is nothing to record per subscriber otherwise)"
        )


def _validate_schedule(schedule: ScheduleConfig, w: Where) -> None:
    """[schedule] durations: collect_every at least 1 s; the others parse."""
    if parse_duration(schedule.collect_every, w("schedule", "collect_every")) < 1:
        raise ConfigError(f"{w('schedule', 'collect_every')}: must be at least 1s")
    parse_duration(schedule.misfire_grace_time, w("schedule", "misfire_grace_time"))
    parse_duration(schedule.catch_up, w("schedule", "catch_up"))


def _validate_web(web: WebConfig, w: Where) -> None:
    """[web] limits: a body cap of 1 KiB to 10 MiB, positive rate limits, a real window;
    ``metrics_token_env``, when set, a variable's name."""
    if not 1024 <= web.max_body_bytes <= 10 * 1024 * 1024:
        raise ConfigError(f"{w('web', 'max_body_bytes')}: must be 1024 to 10485760 bytes")
    if parse_duration(web.rate_window, w("web", "rate_window")) < 1:
        raise ConfigError(f"{w('web', 'rate_window')}: must be at least 1s")
    for key in ("subscribe_per_ip", "subscribe_per_address"):
        if getattr(web, key) < 1:
            raise ConfigError(f"{w('web', key)}: must be at least 1")
    if web.metrics_token_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", web.metrics_token_env):
        raise ConfigError(
            f"{w('web', 'metrics_token_env')}: must name an environment variable "
            "(letters, digits, _), not hold the token itself"
        )
    for proxy in web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"{w('web', 'trusted_proxies')}: {proxy!r} is not an IP address or network"
            ) from None


def _validate_relays(config: Config, w: Where) -> None:
    """[[relays]]: a host, a known security, rates of 0 or more, unique names."""
    for key in ("relay_failures", "relay_recheck"):
        if getattr(config.delivery, key) < 1:
            raise ConfigError(f"{w('delivery', key)}: must be at least 1")
    if config.delivery.rate_limit < 0:
        raise ConfigError(f"{w('delivery', 'rate_limit')}: must be 0 (no limit) or more")
    names: set[str] = set()
    for i, relay in enumerate(config.relays):
        if not relay.host:
            raise ConfigError(f"{w('relays', i, 'host')}: must not be empty")
        check_choice(relay.security, SMTP_SECURITY, w("relays", i, "security"))
        if relay.rate < 0:
            raise ConfigError(f"{w('relays', i, 'rate')}: must be 0 (no limit) or more")
        if relay.timeout <= 0:
            raise ConfigError(f"{w('relays', i, 'timeout')}: must be more than 0 seconds")
        if relay.label in names:
            raise ConfigError(f"{w('relays', i)}: duplicate relay {relay.label!r} (set 'name')")
        names.add(relay.label)


def _validate_api(api: ApiConfig, w: Where) -> None:
    """[api]: a per-token request rate of 1 to 1,000,000 a minute."""
    if not 1 <= api.requests_per_minute <= 1_000_000:
        raise ConfigError(f"{w('api', 'requests_per_minute')}: must be 1 to 1000000")


def _validate_webhooks(config: Config, w: Where) -> None:
    """[[webhooks]]: an http(s) URL, known events, a secret variable's name, sane retries,
    unique names. Local and private addresses are allowed: the operator chose the URL."""
    names: set[str] = set()
    for i, hook in enumerate(config.webhooks):
        check_url(hook.url, w("webhooks", i, "url"))
        if not hook.events:
            raise ConfigError(f"{w('webhooks', i, 'events')}: name at least one event")
        for event in hook.events:
            check_choice(event, WEBHOOK_EVENTS, w("webhooks", i, "events"))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", hook.secret_env):
            raise ConfigError(
                f"{w('webhooks', i, 'secret_env')}: must name an environment variable "
                "(letters, digits, _), not hold the secret itself"
            )
        if not 0 < hook.timeout <= 60:
            raise ConfigError(f"{w('webhooks', i, 'timeout')}: must be more than 0, at most 60 seconds")
        for value in hook.retries:
            if parse_duration(value, w("webhooks", i, "retries")) < 1:
                raise ConfigError(f"{w('webhooks', i, 'retries')}: each wait must be at least 1s")
        if hook.max_failures < 0:
            raise ConfigError(f"{w('webhooks', i, 'max_failures')}: must be 0 (never) or more")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}", hook.label):
            raise ConfigError(
                f"{w('webhooks', i, 'name')}: {hook.label!r}: use letters, digits, '.', '_', ':', '-'"
            )
        if hook.label in names:
            raise ConfigError(f"{w('webhooks', i)}: duplicate webhook {hook.label!r} (set 'name')")
        names.add(hook.label)


def _validate_admin(admin: AdminConfig, w: Where) -> None:
    """[admin]: sessions of 1 hour to 30 days, uploads of 1 to 10240 MB, positive login
    limits over a window of at least 1 s."""
    if not 1 <= admin.session_hours <= 720:
        raise ConfigError(f"{w('admin', 'session_hours')}: must be 1 to 720 hours")
    if not 1 <= admin.max_upload_mb <= 10240:
        raise ConfigError(f"{w('admin', 'max_upload_mb')}: must be 1 to 10240 MB")
    if parse_duration(admin.login_window, w("admin", "login_window")) < 1:
        raise ConfigError(f"{w('admin', 'login_window')}: must be at least 1s")
    for key in ("login_per_address", "login_per_ip"):
        if getattr(admin, key) < 1:
            raise ConfigError(f"{w('admin', key)}: must be at least 1")
