"""The PublisherError tree (no I/O). Each error says what the operator should do.

PublisherError            base: the CLI prints ``error: <message>`` and exits 1
├── ConfigError           config.toml is unreadable, has an unknown key or a wrong type
├── ContentError          one article (file or feed entry) cannot be used; it is skipped
├── StoreError            the database cannot be opened or migrated
├── TransportError        the mail transport cannot be set up (connect, TLS, auth)
│   └── DeliveryError     one message was refused; ``permanent`` tells retry from give-up
├── SubscriberError       an invalid address or an unknown subscriber
└── DigestError           an unknown digest id, or a digest that cannot be rendered
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base of every error the operator can act on; the message is one line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} ({hint})")


class ConfigError(PublisherError):
    """The configuration file is unreadable or invalid."""


class ContentError(PublisherError):
    """An article cannot be collected; it is reported and the rest go on."""


class StoreError(PublisherError):
    """The store cannot be opened, migrated or written."""


class TransportError(PublisherError):
    """The transport cannot be opened (connection, TLS or authentication)."""


class DeliveryError(TransportError):
    """One message was not accepted; ``permanent`` is true for 5xx replies."""

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class SubscriberError(PublisherError):
    """An invalid address, a bad import row, or an unknown subscriber."""


class DigestError(PublisherError):
    """An unknown digest, or a digest whose templates cannot be rendered."""


class OperatorError(PublisherError):
    """An unknown or duplicate operator or API token, an invalid role or a weak password."""
