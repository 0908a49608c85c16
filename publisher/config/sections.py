"""The settings as frozen, typed dataclasses: one per config.toml section (pure: no I/O).

Each class's docstring names its section. The defaults here are the defaults of the file:
a key left out of config.toml takes the value written on its field. :class:`Config` holds
the whole file and a few derived views (the relay list, the store URL, the feeds URL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from publisher.config.hooks import HooksConfig
from publisher.errors import ConfigError

FEED_FORMATS = ("rss", "atom", "json")
SOURCE_TYPES = ("markdown", "feed")
TRANSPORTS = ("file", "smtp")
SMTP_SECURITY = ("starttls", "tls", "none")
WEBHOOK_EVENTS = (
    "subscriber.created",
    "subscriber.unsubscribed",
    "subscriber.complained",
    "issue.sent",
    "issue.paused",
    "delivery.bounced",
)


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
    # Engagement (off by default, see README "Engagement, private by default").
    track_clicks: bool = False
    track_opens: bool = False
    individual_tracking: bool = False
    retention_days: int = 90
    bot_window_seconds: int = 10
    # Auto-pause thresholds for this digest's issues; unset: the [delivery] defaults.
    pause_bounce_rate: float | None = None
    pause_complaint_rate: float | None = None
    pause_min_sent: int | None = None


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
    # Auto-pause (services.guard): an issue stops itself once, after pause_min_sent final
    # outcomes, its hard-bounce or complaint rate passes these (fractions, not percents).
    pause_bounce_rate: float = 0.05
    pause_complaint_rate: float = 0.001
    pause_min_sent: int = 100
    domains: tuple[DomainLimit, ...] = ()  # [delivery.domains], parsed by build.domain_limits()

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
    """[web]: the web endpoints: public base URL, signing secret, archive, request limits,
    and ``/metrics`` (on unless ``metrics = false``; a bearer token when ``metrics_token_env``
    names a variable). ``trusted_proxies``: the addresses or networks (CIDR) of the reverse
    proxies whose ``X-Forwarded-For`` is believed, for rate limits and the audit log."""

    base_url: str = "http://127.0.0.1:8080"
    secret_env: str = "PUBLISHER_SECRET"
    archive_dir: Path = Path("archive")
    max_body_bytes: int = 16384
    rate_window: str = "1h"
    subscribe_per_ip: int = 20
    subscribe_per_address: int = 3
    metrics: bool = True
    metrics_token_env: str = ""
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiConfig:
    """[api]: the HTTP API under ``/api/v1/`` that ``publisher serve`` mounts (on unless
    ``enabled = false``), and the requests each API token may make per minute (then 429)."""

    enabled: bool = True
    requests_per_minute: int = 600


@dataclass(frozen=True)
class WebhookConfig:
    """One [[webhooks]] entry: where events are POSTed, which ones, and the signing secret.

    ``retries`` are the waits before each retry of a failed event (then it is given up);
    after ``max_failures`` failed attempts in a row the hook is turned off until
    ``publisher webhooks enable NAME`` (0 = never). ``name`` defaults to the URL's host.
    """

    url: str
    events: tuple[str, ...]
    secret_env: str
    name: str = ""
    timeout: float = 10.0
    retries: tuple[str, ...] = ("1m", "5m", "30m", "2h", "6h", "12h", "24h")
    max_failures: int = 20

    @property
    def label(self) -> str:
        """The hook's name in the store, the CLI and the console."""
        if self.name:
            return self.name
        rest = self.url.split("://", 1)[-1]
        return rest.split("/", 1)[0].rsplit("@", 1)[-1]


@dataclass(frozen=True)
class AdminConfig:
    """[admin]: the operators' console under ``/admin/`` (on unless ``enabled = false``).

    ``session_hours``: how long a login lasts; ``max_upload_mb``: the cap on a CSV upload;
    ``login_per_address`` and ``login_per_ip``: failed logins allowed per operator address
    and per client IP within ``login_window`` before further attempts are refused (429)."""

    enabled: bool = True
    session_hours: int = 12
    max_upload_mb: int = 50
    login_window: str = "15m"
    login_per_address: int = 5
    login_per_ip: int = 20


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
    api: ApiConfig = field(default_factory=ApiConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    admin: AdminConfig = field(default_factory=AdminConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)

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
