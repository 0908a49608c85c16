"""config.toml -> frozen, typed dataclasses (reads one file; no other I/O).

Every error names the file, the line (when it can be found), the key path and the value,
for example ``config.toml:14: digests[0].schedule: '0 25 * * *' is not a valid cron
expression``. Unknown keys get a "did you mean" hint. Relative paths are resolved against
the directory of the config file, so ``publisher --config /etc/pub/config.toml`` behaves
the same from any working directory. Secrets are never read from the file: ``password_env``
and ``secret_env`` name environment variables, read by :func:`secret_from_env`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from publisher.errors import ConfigError

CONFIG_ENV = "PUBLISHER_CONFIG"
FEED_FORMATS = ("rss", "atom", "json")
SOURCE_TYPES = ("markdown", "feed")
TRANSPORTS = ("file", "smtp")
SMTP_SECURITY = ("starttls", "tls", "none")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SiteConfig:
    """[site]: who publishes; used in feeds, digests and the CAN-SPAM footer."""

    title: str
    url: str
    description: str = ""
    language: str = "en"
    author: str = ""
    postal_address: str = ""
    templates_dir: Path | None = None


@dataclass(frozen=True)
class StoreConfig:
    """[store]: the SQLAlchemy URL of the database."""

    url: str = "sqlite:///publisher.db"


@dataclass(frozen=True)
class SourceConfig:
    """One [[sources]] entry: where articles come from."""

    name: str
    type: str = "markdown"
    path: Path | None = None
    url: str | None = None
    tags: tuple[str, ...] = ()
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    initial_items: int = 10
    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 20.0
    allow_private: bool = False


@dataclass(frozen=True)
class FeedsConfig:
    """[feeds]: which syndication files to write, and where."""

    output_dir: Path = Path("feeds")
    formats: tuple[str, ...] = FEED_FORMATS
    limit: int = 20
    per_tag: bool = False
    per_author: bool = False
    public_url: str = ""
    ttl: int = 60
    archive: bool = False
    archive_page_size: int = 50
    websub_hub: str = ""
    websub_timeout: float = 10.0


@dataclass(frozen=True)
class DigestConfig:
    """One [[digests]] entry: a newsletter with its own schedule and filter."""

    id: str
    title: str
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    subject: str = "{title}: {date}"
    max_articles: int = 10
    tags: tuple[str, ...] = ()
    preheader: str = ""
    excerpt_words: int = 60
    full: bool = False
    max_html_kb: int = 95
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    catch_up: str = ""
    send_window: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    """[schedule]: the daemon (``publisher run``): collect interval, misfires and catch-up."""

    collect_every: str = "15m"
    misfire_grace_time: str = "1h"
    catch_up: str = "1d"


@dataclass(frozen=True)
class DkimConfig:
    """[delivery.dkim]: sign every message with DKIM (the key from a file or a variable)."""

    selector: str
    domain: str
    private_key_path: Path | None = None
    private_key_env: str = ""


@dataclass(frozen=True)
class DomainLimit:
    """One [delivery.domains] entry: pacing of mail to one recipient domain (or ``"*"``).

    ``rate`` is messages per second and ``connections`` the number of messages in flight
    at once to that domain, both across every process sharing the store (0 = no limit).
    ``"*"`` applies to each domain without an entry of its own, separately per domain.
    """

    domain: str
    rate: float = 0.0
    connections: int = 0


@dataclass(frozen=True)
class DeliveryConfig:
    """[delivery]: how messages leave (``file`` outbox or ``smtp``) and how fast."""

    # `from` may be "Name <address>" or a bare address. After loading, from_ holds the bare
    # address (the envelope sender everywhere) and from_name the display name: the one
    # written in `from`, else [site] title.
    from_: str = "newsletter@example.org"
    from_name: str = ""
    transport: str = "file"
    outbox_dir: Path = Path("outbox")
    reply_to: str = ""
    rate_limit: float = 0.0
    connections: int = 1
    batch_size: int = 200
    max_attempts: int = 5
    retry_base_seconds: int = 60
    lease_seconds: int = 300
    throttle_seconds: int = 30
    relay_failures: int = 3
    relay_recheck: int = 30
    # Each sending process's journal of messages sent but not yet recorded (local disk).
    journal_dir: Path = Path("journal")
    dkim: DkimConfig | None = None
    domains: tuple[DomainLimit, ...] = ()  # [delivery.domains], parsed by _domains()

    def domain_limit(self, domain: str) -> DomainLimit | None:
        """The pacing of a recipient domain: its own entry, else ``"*"``, else None."""
        fallback = None
        for limit in self.domains:
            if limit.domain == domain:
                return limit
            if limit.domain == "*":
                fallback = limit
        return fallback


@dataclass(frozen=True)
class SmtpConfig:
    """[smtp]: the relay used when ``[delivery] transport = "smtp"``."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    timeout: float = 30.0
    verify_certificates: bool = True
    max_messages_per_connection: int = 1000


@dataclass(frozen=True)
class RelayConfig:
    """One [[relays]] entry: an SMTP relay with the keys of [smtp] plus ``rate`` and
    ``priority`` (lower goes first). ``name`` defaults to ``host:port``."""

    host: str
    name: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    timeout: float = 30.0
    verify_certificates: bool = True
    max_messages_per_connection: int = 1000
    rate: float = 0.0
    priority: int = 0

    @property
    def label(self) -> str:
        """The relay's name in the store, logs and ``status``."""
        return self.name or f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BouncesConfig:
    """[bounces]: an IMAP mailbox of bounce messages that the daemon polls (optional)."""

    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "tls"
    imap_username: str = ""
    imap_password_env: str = "PUBLISHER_IMAP_PASSWORD"
    imap_folder: str = "INBOX"
    processed_folder: str = "publisher-processed"
    poll_minutes: int = 15
    verify_certificates: bool = True


@dataclass(frozen=True)
class WebConfig:
    """[web]: the web endpoints: public base URL, signing secret, archive, request limits."""

    base_url: str = "http://127.0.0.1:8080"
    secret_env: str = "PUBLISHER_SECRET"
    archive_dir: Path = Path("archive")
    max_body_bytes: int = 16384
    rate_window: str = "1h"
    subscribe_per_ip: int = 20
    subscribe_per_address: int = 3


def _validate_web(web: WebConfig, w: typing.Callable[..., str]) -> None:
    """[web] limits: a body cap of 1 KiB to 10 MiB, positive rate limits, a real window."""
    if not 1024 <= web.max_body_bytes <= 10 * 1024 * 1024:
        raise ConfigError(f"{w('web', 'max_body_bytes')}: must be 1024 to 10485760 bytes")
    if parse_duration(web.rate_window, w("web", "rate_window")) < 1:
        raise ConfigError(f"{w('web', 'rate_window')}: must be at least 1s")
    for key in ("subscribe_per_ip", "subscribe_per_address"):
        if getattr(web, key) < 1:
            raise ConfigError(f"{w('web', key)}: must be at least 1")


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``path`` is the file it came from."""

    path: Path
    site: SiteConfig
    store: StoreConfig = field(default_factory=StoreConfig)
    sources: tuple[SourceConfig, ...] = ()
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    digests: tuple[DigestConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    web: WebConfig = field(default_factory=WebConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
    relays: tuple[RelayConfig, ...] = ()

    @property
    def relay_list(self) -> tuple[RelayConfig, ...]:
        """The relays in priority order; a lone [smtp] is one relay."""
        if self.relays:
            return tuple(sorted(self.relays, key=lambda r: r.priority))
        s = self.smtp
        return (
            RelayConfig(
                host=s.host, port=s.port, security=s.security, username=s.username,
                password_env=s.password_env, timeout=s.timeout,
                verify_certificates=s.verify_certificates,
                max_messages_per_connection=s.max_messages_per_connection,
            ),
        )  # fmt: skip

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the file are resolved against."""
        return self.path.parent

    def digest(self, digest_id: str) -> DigestConfig:
        """Return the digest with this id, or fail with the list of known ids."""
        for digest in self.digests:
            if digest.id == digest_id:
                return digest
        known = ", ".join(d.id for d in self.digests) or "none configured"
        raise ConfigError(f"unknown digest {digest_id!r} (known: {known})")

    @property
    def feeds_url(self) -> str:
        """Where the feed files are published: [feeds] public_url, else <web.base_url>/feeds/."""
        return self.feeds.public_url or f"{self.web.base_url.rstrip('/')}/feeds/"

    @property
    def store_url(self) -> str:
        """The store URL, with a relative SQLite path made absolute against base_dir."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:" and not rest.startswith(":"):
                return prefix + str((self.base_dir / rest).resolve())
        return url


_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "sources": SourceConfig,
    "feeds": FeedsConfig,
    "digests": DigestConfig,
    "delivery": DeliveryConfig,
    "smtp": SmtpConfig,
    "web": WebConfig,
    "schedule": ScheduleConfig,
    "bounces": BouncesConfig,
    "relays": RelayConfig,
}
_ARRAYS = {"sources", "digests", "relays"}
_RESERVED = {"from_": "from"}
_DERIVED = {"from_name"}  # computed at load time, never read from the file


class _Locator:
    """Finds the line of a key path in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, path: tuple[str | int, ...]) -> int | None:
        """Return the 1-based line of ``path`` (section, [index], key), if it can be found."""
        if not path:
            return None
        section = str(path[0])
        rest = path[1:]
        index = 0
        if rest and isinstance(rest[0], int):
            index, rest = rest[0], rest[1:]
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        start = None
        for number, text in enumerate(self.lines):
            if header.match(text):
                seen += 1
                if seen == index:
                    start = number
                    break
        if start is None:
            return None
        if not rest:
            return start + 1
        key = re.compile(rf"^\s*\"?{re.escape(str(rest[0]))}\"?\s*=")
        for number in range(start + 1, len(self.lines)):
            text = self.lines[number]
            if re.match(r"^\s*\[", text):
                break
            if key.match(text):
                return number + 1
        return start + 1


def _where(file: Path, locator: _Locator, path: tuple[str | int, ...]) -> str:
    dotted = ""
    for part in path:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else part)
    line = locator.line(path)
    return f"{file.name}:{line}: {dotted}" if line else f"{file.name}: {dotted}"


def _unknown(name: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"unknown key {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _convert(value: Any, hint: Any, where: str, base: Path) -> Any:
    """Check ``value`` against the field's type hint and convert it."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, options[0], where, base)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path string, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover


def _table_type(hint: Any) -> type | None:
    """The dataclass a setting holds when it is a sub-table (``X`` or ``X | None``)."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    cls = options[0]
    return cls if isinstance(cls, type) and dataclasses.is_dataclass(cls) else None


def _build(
    cls: type, table: Any, path: tuple[str | int, ...], file: Path, locator: _Locator
) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{_where(file, locator, path)}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = {
        _RESERVED.get(f.name, f.name): f for f in dataclasses.fields(cls) if f.name not in _DERIVED
    }
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(f"{_where(file, locator, (*path, key))}: {_unknown(key, names)}")
        f = names[key]
        nested = _table_type(hints[f.name])
        if nested is not None:
            # A sub-table such as [delivery.dkim]: its own header, its own key paths.
            kwargs[f.name] = _build(nested, value, (f"{path[0]}.{key}", *path[1:]), file, locator)
            continue
        kwargs[f.name] = _convert(
            value, hints[f.name], _where(file, locator, (*path, key)), file.parent
        )
    for key, f in names.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and f.name not in kwargs:
            raise ConfigError(f"{_where(file, locator, path)}: missing required key {key!r}")
        if f.name not in kwargs and isinstance(f.default, Path) and not f.default.is_absolute():
            # Default folders live next to the config file too, not in the working directory.
            kwargs[f.name] = (file.parent / f.default).resolve()
    return cls(**kwargs)


def _check_choice(value: str, choices: typing.Iterable[str], where: str) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")


def _check_url(value: str, where: str) -> None:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{where}: {value!r} is not an absolute http(s) URL")


def _validate(config: Config, file: Path, locator: _Locator) -> None:
    """Checks that need more than a type: choices, URLs, cron, time zones, uniqueness."""
    from publisher.config import cron

    w = lambda *p: _where(file, locator, p)  # noqa: E731
    _check_url(config.site.url, w("site", "url"))
    _check_url(config.web.base_url, w("web", "base_url"))
    if config.feeds.public_url:
        _check_url(config.feeds.public_url, w("feeds", "public_url"))
    for fmt in config.feeds.formats:
        _check_choice(fmt, FEED_FORMATS, w("feeds", "formats"))
    if config.feeds.limit < 1:
        raise ConfigError(f"{w('feeds', 'limit')}: must be at least 1")
    if not 1 <= config.feeds.ttl <= 10080:
        raise ConfigError(f"{w('feeds', 'ttl')}: must be 1 to 10080 minutes (a week)")
    if not 1 <= config.feeds.archive_page_size <= 1000:
        raise ConfigError(f"{w('feeds', 'archive_page_size')}: must be 1 to 1000")
    if config.feeds.websub_hub:
        _check_url(config.feeds.websub_hub, w("feeds", "websub_hub"))
    if not 0 < config.feeds.websub_timeout <= 120:
        raise ConfigError(f"{w('feeds', 'websub_timeout')}: must be more than 0 and at most 120")
    _check_choice(config.delivery.transport, TRANSPORTS, w("delivery", "transport"))
    _check_choice(config.smtp.security, SMTP_SECURITY, w("smtp", "security"))
    for key in ("connections", "batch_size", "max_attempts", "throttle_seconds", "lease_seconds"):
        if getattr(config.delivery, key) < 1:
            raise ConfigError(f"{w('delivery', key)}: must be at least 1")
    dkim = config.delivery.dkim
    if dkim is not None and (dkim.private_key_path is None) == (not dkim.private_key_env):
        raise ConfigError(
            f"{w('delivery.dkim')}: set exactly one of private_key_path and private_key_env"
        )
    if config.delivery.reply_to:
        name, address = parseaddr(config.delivery.reply_to)
        problem = ""
        if not address or _CONTROL_CHARS.search(config.delivery.reply_to):
            problem = "is not an address"
        else:
            try:
                validate_email(address, check_deliverability=False, allow_smtputf8=False)
            except EmailNotValidError as exc:
                problem = str(exc)
        if problem:
            raise ConfigError(
                f"{w('delivery', 'reply_to')}: {config.delivery.reply_to!r}: {problem}"
            )
    _check_choice(config.bounces.imap_security, SMTP_SECURITY, w("bounces", "imap_security"))
    if config.bounces.poll_minutes < 1:
        raise ConfigError(f"{w('bounces', 'poll_minutes')}: must be at least 1")
    if config.bounces.imap_host and not config.bounces.imap_username:
        raise ConfigError(f"{w('bounces', 'imap_username')}: required when imap_host is set")
    names: set[str] = set()
    for i, source in enumerate(config.sources):
        _check_choice(source.type, SOURCE_TYPES, w("sources", i, "type"))
        if source.name in names:
            raise ConfigError(f"{w('sources', i, 'name')}: duplicate source name {source.name!r}")
        names.add(source.name)
        if source.type == "markdown" and source.path is None:
            raise ConfigError(f"{w('sources', i)}: a markdown source needs 'path'")
        if source.type == "feed":
            if not source.url:
                raise ConfigError(f"{w('sources', i)}: a feed source needs 'url'")
            _check_url(source.url, w("sources", i, "url"))
        for key in ("initial_items", "max_bytes"):
            if getattr(source, key) < 1:
                raise ConfigError(f"{w('sources', i, key)}: must be at least 1")
        if source.timeout <= 0:
            raise ConfigError(f"{w('sources', i, 'timeout')}: must be more than 0 seconds")
    ids: set[str] = set()
    for i, digest in enumerate(config.digests):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", digest.id):
            raise ConfigError(
                f"{w('digests', i, 'id')}: {digest.id!r} must be lowercase letters, digits, - or _"
            )
        if digest.id in ids:
            raise ConfigError(f"{w('digests', i, 'id')}: duplicate digest id {digest.id!r}")
        ids.add(digest.id)
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
            digest.subject.format(
                title=digest.title, date="", site=config.site.title, count=0, stories=""
            )
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ConfigError(
                f"{w('digests', i, 'subject')}: {digest.subject!r} uses an unknown field {exc} "
                "(use {title}, {date}, {site}, {count} or {stories})"
            ) from exc
        if digest.catch_up:
            parse_duration(digest.catch_up, w("digests", i, "catch_up"))
        if digest.send_window:
            parse_window(digest.send_window, w("digests", i, "send_window"))
    _validate_schedule(config.schedule, w)
    _validate_web(config.web, w)
    _validate_relays(config, w)


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_duration(value: str, where: str = "duration") -> int:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1w"`` (or ``"0"``) -> whole seconds."""
    if value.strip() == "0":
        return 0
    match = _DURATION.match(value)
    if not match:
        raise ConfigError(
            f"{where}: {value!r} is not a duration (write a number and a unit: 90s, 15m, 2h, 1d, 1w)"
        )
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def parse_window(value: str, where: str = "send_window") -> tuple[int, int]:
    """``"07:00-20:00"`` -> (start, end) in minutes after local midnight; may wrap midnight."""
    match = _WINDOW.match(value)
    problem = "" if match else "is not HH:MM-HH:MM"
    if match:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            problem = "has an hour or minute out of range"
        elif (h1, m1) == (h2, m2):
            problem = "is empty (start equals end)"
        else:
            return h1 * 60 + m1, h2 * 60 + m2
    raise ConfigError(f"{where}: {value!r} {problem} (for example \"07:00-20:00\")")


def _validate_relays(config: Config, w: typing.Callable[..., str]) -> None:
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
        _check_choice(relay.security, SMTP_SECURITY, w("relays", i, "security"))
        if relay.rate < 0:
            raise ConfigError(f"{w('relays', i, 'rate')}: must be 0 (no limit) or more")
        if relay.timeout <= 0:
            raise ConfigError(f"{w('relays', i, 'timeout')}: must be more than 0 seconds")
        if relay.label in names:
            raise ConfigError(f"{w('relays', i)}: duplicate relay {relay.label!r} (set 'name')")
        names.add(relay.label)


_DOMAIN = re.compile(r"^(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)$")


def _domains(table: Any, file: Path, locator: _Locator) -> tuple[DomainLimit, ...]:
    """[delivery.domains]: ``"gmail.com" = { rate = 20, connections = 2 }`` entries."""
    where = lambda *p: _where(file, locator, ("delivery.domains", *p))  # noqa: E731
    if not isinstance(table, dict):
        raise ConfigError(f"{where()}: expected a table of domains, got {table!r}")
    limits = []
    for domain, value in table.items():
        if not _DOMAIN.match(domain):
            raise ConfigError(
                f"{where(domain)}: {domain!r} is not a lowercase domain name or \"*\""
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where(domain)}: expected {{ rate = N, connections = N }}, got {value!r}"
            )
        limit = _build(DomainLimit, {**value, "domain": domain}, ("delivery.domains", domain),
                       file, locator)  # fmt: skip
        if "domain" in value:
            raise ConfigError(f"{where(domain)}: {_unknown('domain', ('rate', 'connections'))}")
        if limit.rate < 0 or limit.connections < 0 or not (limit.rate or limit.connections):
            raise ConfigError(
                f"{where(domain)}: set rate (messages/s) and/or connections to more than 0"
            )
        limits.append(limit)
    return tuple(limits)


def _validate_schedule(schedule: ScheduleConfig, w: typing.Callable[..., str]) -> None:
    """[schedule] durations: collect_every at least 1 s; the others parse."""
    if parse_duration(schedule.collect_every, w("schedule", "collect_every")) < 1:
        raise ConfigError(f"{w('schedule', 'collect_every')}: must be at least 1s")
    parse_duration(schedule.misfire_grace_time, w("schedule", "misfire_grace_time"))
    parse_duration(schedule.catch_up, w("schedule", "catch_up"))


def default_path() -> Path:
    """The config file to use when ``--config`` is not given."""
    return Path(os.environ.get(CONFIG_ENV) or "config.toml")


def load(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError naming the file, line and key."""
    path = path.expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: config file not found", hint=f"pass --config or set ${CONFIG_ENV}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from exc
    return parse(data, path, text)


def parse(data: dict[str, Any], path: Path, text: str = "") -> Config:
    """Build a Config from parsed TOML ``data`` that came from ``path``."""
    locator = _Locator(text)
    kwargs: dict[str, Any] = {}
    if "site" not in data:
        raise ConfigError(f"{path.name}: missing required table [site]")
    for key, value in data.items():
        if key not in _SECTIONS:
            raise ConfigError(f"{_where(path, locator, (key,))}: {_unknown(key, _SECTIONS)}")
        cls = _SECTIONS[key]
        if key in _ARRAYS:
            if not isinstance(value, list):
                raise ConfigError(f"{_where(path, locator, (key,))}: write it as [[{key}]] tables")
            kwargs[key] = tuple(
                _build(cls, item, (key, i), path, locator) for i, item in enumerate(value)
            )
        elif key == "delivery" and isinstance(value, dict) and "domains" in value:
            rest = {k: v for k, v in value.items() if k != "domains"}
            kwargs[key] = dataclasses.replace(
                _build(cls, rest, (key,), path, locator),
                domains=_domains(value["domains"], path, locator),
            )
        else:
            kwargs[key] = _build(cls, value, (key,), path, locator)
    if "smtp" in data and "relays" in data:
        raise ConfigError(
            f"{_where(path, locator, ('smtp',))}: [smtp] and [[relays]] cannot both be set; "
            "move [smtp] host, port, security, username, password_env into a [[relays]] entry"
        )
    for key, cls in _SECTIONS.items():
        if key not in kwargs and key not in _ARRAYS and key != "site":
            kwargs[key] = _build(cls, {}, (key,), path, locator)
    config = Config(path=path, **kwargs)
    _validate(config, path, locator)
    return _with_sender(config, _where(path, locator, ("delivery", "from")))


def _with_sender(config: Config, where: str) -> Config:
    """Split ``[delivery] from`` ("Name <address>" or an address) into address and name.

    ``email.utils.parseaddr`` splits it, since the validator takes only a bare address;
    the display name defaults to ``[site] title``.
    """
    raw = config.delivery.from_
    pairs = getaddresses([raw])
    name, address = pairs[0] if len(pairs) == 1 else ("", "")
    problem = ""
    if _CONTROL_CHARS.search(raw):
        problem = "holds a control character (a line break could forge headers)"
    elif len(pairs) > 1:
        problem = "holds more than one address"
    elif not address:
        problem = "is not an address"
    elif "<" in raw and not raw.rstrip().endswith(">"):
        problem = "has an unclosed '<'"
    else:
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            problem = str(exc)
    if problem:
        raise ConfigError(
            f'{where}: {raw!r}: {problem} (write "Name <news@example.org>" or "news@example.org")'
        )
    delivery = dataclasses.replace(
        config.delivery, from_=address, from_name=name.strip() or config.site.title
    )
    return dataclasses.replace(config, delivery=delivery)


def secret_from_env(env_name: str, *, what: str) -> str | None:
    """Return the secret held by environment variable ``env_name`` (None when unset)."""
    if not env_name:
        return None
    return os.environ.get(env_name) or None
