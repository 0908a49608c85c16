"""Mail transports (disk I/O): the Transport interface, the file outbox, and the registry.

A transport is opened once, sends many messages, and is closed. ``send`` raises
:class:`DeliveryError` for a message that was not accepted, with ``permanent`` set for 5xx
replies, so the delivery engine can tell a retry from a give-up. The ``smtp`` transport is
:class:`publisher.deliver.relays.RelayTransport` over :mod:`publisher.deliver.smtp`
connections.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from publisher.config import Config
from publisher.errors import DeliveryError, TransportError
from publisher.files import write_atomic


class Transport(Protocol):
    """What the delivery engine needs from a transport."""

    def open(self) -> None:
        """Connect (or prepare the folder); raise TransportError when that fails."""

    def send(self, sender: str, recipient: str, message: bytes, name: str) -> str:
        """Hand over one message; return the server's reply. ``name`` labels the message."""

    def close(self) -> None:
        """Release the connection."""

    def describe(self) -> str:
        """Where messages go, for summaries."""


class FileTransport:
    """Writes each message as an ``.eml`` file under the outbox folder (no mail server)."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def open(self) -> None:
        """Create the outbox folder."""
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(f"outbox {self.outbox}: {exc.strerror}") from exc

    def send(self, sender: str, recipient: str, message: bytes, name: str) -> str:
        """Write ``<outbox>/<name>.eml`` atomically."""
        safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", name)
        path = self.outbox / f"{safe}.eml"
        try:
            write_atomic(path, message)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc.strerror}") from exc
        return f"written {path.name}"

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        """The outbox folder."""
        return str(self.outbox)


def _file(config: Config) -> Transport:
    return FileTransport(config.delivery.outbox_dir)


def _smtp(config: Config, health: Any = None) -> Transport:
    # Imported here so that importing the Transport interface (signup, feeds) does not
    # import SQLAlchemy through the relays' shared health.
    from publisher.deliver.relays import relay_transport

    return relay_transport(config, health)


TRANSPORTS: dict[str, Callable[[Config, Any], Transport]] = {
    "file": lambda config, _health: _file(config),
    "smtp": _smtp,
}


def make_transport(config: Config, health: Any = None) -> Transport:
    """The transport named by ``[delivery] transport``; ``health`` (the store) shares the
    relays' health with every other sending process."""
    return TRANSPORTS[config.delivery.transport](config, health)
