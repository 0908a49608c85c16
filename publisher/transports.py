"""Mail transports (network and disk I/O): the file outbox and SMTP, chosen from a registry.

A transport is opened once, sends many messages, and is closed. ``send`` raises
:class:`DeliveryError` for a message that was not accepted, with ``permanent`` set for 5xx
replies, so the delivery engine can tell a retry from a give-up.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from publisher.config import Config, secret_from_env
from publisher.errors import DeliveryError, TransportError


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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


class SmtpTransport:
    """SMTP with one reused connection, STARTTLS/TLS, AUTH and reconnects."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        username: str = "",
        password: str | None = None,
        password_env: str = "",
        timeout: float = 30.0,
        verify_certificates: bool = True,
        max_messages_per_connection: int = 1000,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.password_env = password_env  # named in the error when the password is missing
        self.timeout = timeout
        self.verify = verify_certificates
        self.max_per_connection = max_messages_per_connection
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open(self) -> None:
        """Connect, secure and authenticate; raise TransportError with the reason."""
        where = f"smtp {self.host}:{self.port}"
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                smtp.ehlo()
                if self.security == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
            if self.username:
                if self.password is None:
                    raise TransportError(self._no_password(where))
                smtp.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"{where}: authentication failed: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise TransportError(f"{where}: {exc} (check [smtp] security)") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"{where}: cannot connect: {exc}") from exc
        self._smtp = smtp
        self._sent_on_connection = 0

    def _no_password(self, where: str) -> str:
        if not self.password_env:
            return (
                f"{where}: username {self.username!r} is set but password_env is not: name the "
                "environment variable that holds the password (passwords never go in config.toml)"
            )
        return (
            f"{where}: username {self.username!r} is set but the password environment variable "
            f"{self.password_env} (password_env) is not set or empty: export {self.password_env}"
        )

    def send(self, sender: str, recipient: str, message: bytes, name: str) -> str:
        """Send one message; reconnect when the connection dropped or is used up."""
        if self._smtp is None or self._sent_on_connection >= self.max_per_connection:
            self.close()
            self.open()
        assert self._smtp is not None
        try:
            self._smtp.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (450, b"recipient refused"))
            if code == 421:
                self._drop()
            raise DeliveryError(f"{code} {_text(reply)}", code=code, permanent=code >= 500) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # "closing the connection": the next send reconnects
                self._drop()
            raise DeliveryError(
                f"{exc.smtp_code} {_text(exc.smtp_error)}",
                code=exc.smtp_code,
                permanent=exc.smtp_code >= 500,
            ) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise DeliveryError(f"connection lost: {exc}") from exc
        except smtplib.SMTPException as exc:
            self._smtp = None
            raise DeliveryError(f"smtp error: {exc}") from exc
        self._sent_on_connection += 1
        return "250 ok"

    def _drop(self) -> None:
        """Forget a connection the server is closing."""
        if self._smtp is not None:
            try:
                self._smtp.close()
            except OSError:
                pass
            self._smtp = None

    def close(self) -> None:
        """QUIT politely; ignore a connection that is already gone."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None

    def describe(self) -> str:
        """The relay."""
        return f"smtp://{self.host}:{self.port}"


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).replace(
        "\n", " "
    )


def _file(config: Config) -> Transport:
    return FileTransport(config.delivery.outbox_dir)


def _smtp(config: Config) -> Transport:
    smtp = config.smtp
    return SmtpTransport(
        smtp.host,
        smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=secret_from_env(smtp.password_env, what="[smtp] password_env"),
        password_env=smtp.password_env,
        timeout=smtp.timeout,
        verify_certificates=smtp.verify_certificates,
        max_messages_per_connection=smtp.max_messages_per_connection,
    )


TRANSPORTS: dict[str, Callable[[Config], Transport]] = {"file": _file, "smtp": _smtp}


def make_transport(config: Config) -> Transport:
    """The transport named by ``[delivery] transport``."""
    return TRANSPORTS[config.delivery.transport](config)
