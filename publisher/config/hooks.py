"""[hooks.<provider>] tables: the email providers whose bounce and complaint webhooks
``POST /hooks/<provider>`` accepts, and where their credentials are (pure: no I/O).

Each table is off until ``enabled = true``. Secrets are never in the file: the ``*_env``
keys name the environment variables that hold them (read when a request arrives).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from publisher.config.values import parse_duration
from publisher.errors import ConfigError

# Amazon's SNS signing certificates are served from sns.<region>.amazonaws.com (and the
# .com.cn hosts in China): the default allow-list of SigningCertURL and SubscribeURL hosts.
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SesHook:
    """[hooks.ses]: Amazon SES events delivered by an SNS HTTPS subscription.

    ``topic_arns``: when set, only these SNS topics are accepted. ``cert_hosts``: extra
    hosts (``host`` or ``host:port``) allowed for SigningCertURL and SubscribeURL besides
    ``sns.<region>.amazonaws.com``; plain http is accepted only from a host listed here."""

    enabled: bool = False
    topic_arns: tuple[str, ...] = ()
    cert_hosts: tuple[str, ...] = ()
    confirm_subscriptions: bool = True


@dataclass(frozen=True)
class PostmarkHook:
    """[hooks.postmark]: Postmark bounce and spam-complaint webhooks, with HTTP basic auth."""

    enabled: bool = False
    username_env: str = "PUBLISHER_POSTMARK_HOOK_USER"
    password_env: str = "PUBLISHER_POSTMARK_HOOK_PASSWORD"


@dataclass(frozen=True)
class SendgridHook:
    """[hooks.sendgrid]: SendGrid's signed event webhook (ECDSA P-256); ``max_age``: how
    old the signed timestamp may be."""

    enabled: bool = False
    public_key_env: str = "PUBLISHER_SENDGRID_HOOK_KEY"
    max_age: str = "10m"


@dataclass(frozen=True)
class MailgunHook:
    """[hooks.mailgun]: Mailgun's signed webhooks (HMAC-SHA256 with the webhook signing
    key); ``max_age``: how old the signed timestamp may be."""

    enabled: bool = False
    signing_key_env: str = "PUBLISHER_MAILGUN_SIGNING_KEY"
    max_age: str = "10m"


@dataclass(frozen=True)
class HooksConfig:
    """[hooks]: one sub-table per provider, [hooks.ses], [hooks.postmark], [hooks.sendgrid]
    and [hooks.mailgun]."""

    ses: SesHook = field(default_factory=SesHook)
    postmark: PostmarkHook = field(default_factory=PostmarkHook)
    sendgrid: SendgridHook = field(default_factory=SendgridHook)
    mailgun: MailgunHook = field(default_factory=MailgunHook)

    def enabled(self) -> dict[str, SesHook | PostmarkHook | SendgridHook | MailgunHook]:
        """The providers turned on, by name (the ``<provider>`` of ``/hooks/<provider>``)."""
        tables = {"ses": self.ses, "postmark": self.postmark,
                  "sendgrid": self.sendgrid, "mailgun": self.mailgun}  # fmt: skip
        return {name: table for name, table in tables.items() if table.enabled}


def validate_hooks(hooks: HooksConfig, w: Callable[..., str]) -> None:
    """Variables' names in the ``*_env`` keys, sane ``max_age``, well-formed hosts."""
    envs = [("postmark", "username_env"), ("postmark", "password_env"),
            ("sendgrid", "public_key_env"), ("mailgun", "signing_key_env")]  # fmt: skip
    for provider, key in envs:
        value = getattr(getattr(hooks, provider), key)
        if not _ENV_NAME.fullmatch(value):
            raise ConfigError(
                f"{w('hooks.' + provider, key)}: must name an environment variable "
                "(letters, digits, _), not hold the secret itself"
            )
    for provider in ("sendgrid", "mailgun"):
        at = w("hooks." + provider, "max_age")
        if not 1 <= parse_duration(getattr(hooks, provider).max_age, at) <= 86400:
            raise ConfigError(f"{at}: must be 1s to 1d")
    for host in hooks.ses.cert_hosts:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
            raise ConfigError(
                f"{w('hooks.ses', 'cert_hosts')}: {host!r} is not a host or host:port"
            )
    for arn in hooks.ses.topic_arns:
        if not arn.startswith("arn:"):
            raise ConfigError(f"{w('hooks.ses', 'topic_arns')}: {arn!r} is not an SNS topic ARN")
