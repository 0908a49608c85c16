"""config.toml -> frozen, typed dataclasses (reads one file; no other I/O).

Every error names the file, the line (when it can be found), the key path and the value,
for example ``config.toml:14: digests[0].schedule: '0 25 * * *' is not a valid cron
expression``. Unknown keys get a "did you mean" hint. Relative paths are resolved against
the directory of the config file, so ``publisher --config /etc/pub/config.toml`` behaves
the same from any working directory. Secrets are never read from the file: ``password_env``
and ``secret_env`` name environment variables, read by :func:`secret_from_env`.

This module only re-exports; import from ``publisher.config``. The modules, in the order
a file flows through them:

- ``load``: the I/O: :func:`default_path`, :func:`load` (read + TOML), :func:`secret_from_env`;
- ``build``: :func:`parse`: TOML tables -> dataclasses, type checks, unknown keys, paths;
- ``validate``: checks beyond types: choices, ranges, URLs, cron, time zones, uniqueness;
- ``values``: one value at a time: :func:`parse_duration`, :func:`parse_window`, URLs, addresses;
- ``locate``: ``file:line: key.path`` prefixes and "did you mean" hints for error messages;
- ``sections``: the frozen dataclasses, one per section, and :class:`Config`;
- ``hooks``: the [hooks.<provider>] tables of the provider webhooks, and their checks;
- ``cron``: crontab(5) schedules as APScheduler triggers (imported on its own, not here).

The package imports the standard library, ``email_validator``, ``publisher.errors`` and
(through ``cron``) APScheduler: nothing above it.
"""

from __future__ import annotations

from publisher.config.build import parse
from publisher.config.hooks import (
    SNS_HOST,
    HooksConfig,
    MailgunHook,
    PostmarkHook,
    SendgridHook,
    SesHook,
)
from publisher.config.load import CONFIG_ENV, default_path, load, secret_from_env
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
    DeliveryConfig,
    DigestConfig,
    DkimConfig,
    DomainLimit,
    FeedsConfig,
    RelayConfig,
    ScheduleConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    StoreConfig,
    WebConfig,
    WebhookConfig,
)
from publisher.config.values import parse_duration, parse_window
from publisher.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "FEED_FORMATS",
    "SMTP_SECURITY",
    "SOURCE_TYPES",
    "TRANSPORTS",
    "ApiConfig",
    "WEBHOOK_EVENTS",
    "AdminConfig",
    "BouncesConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "DigestConfig",
    "DkimConfig",
    "DomainLimit",
    "FeedsConfig",
    "RelayConfig",
    "ScheduleConfig",
    "SiteConfig",
    "SmtpConfig",
    "SourceConfig",
    "StoreConfig",
    "WebConfig",
    "WebhookConfig",
    "SNS_HOST",
    "HooksConfig",
    "MailgunHook",
    "PostmarkHook",
    "SendgridHook",
    "SesHook",
    "default_path",
    "load",
    "parse",
    "parse_duration",
    "parse_window",
    "secret_from_env",
]
