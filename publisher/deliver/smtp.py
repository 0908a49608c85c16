"""One SMTP connection (network I/O): STARTTLS/TLS, AUTH, reuse, reconnects, reply mapping.

:class:`SmtpTransport` sends many messages over one connection and raises
:class:`DeliveryError` for a message that was not accepted (``permanent`` for 5xx), so the
delivery engine can tell a retry from a give-up. The relays (:mod:`publisher.deliver.relays`)
hold one per ``[[relays]]`` entry.
"""

from __future__ import annotations

import smtplib
import ssl

from publisher.errors import DeliveryError, TransportError


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
        self._fresh = True
        self.stale_reconnects = 0  # pooled connections found closed before a message

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
        self._fresh = True  # no transaction yet: a drop now is no stale pooled connection

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
        """Send one message; reconnect when the connection dropped or is used up.

        A pooled connection found closed before any byte of the message went out (at
        MAIL or RCPT) was closed by the server while idle: that is no attempt, so the
        message goes again at once on a new connection. Any reply, and a drop during or
        after DATA, is the attempt's outcome.
        """
        if self._smtp is None or self._sent_on_connection >= self.max_per_connection:
            self.close()
            self.open()
        reused, self._fresh = not self._fresh, False
        try:
            self._transaction(sender, recipient, message)
        except _StaleConnection as stale:
            self._drop()
            if not reused:
                raise DeliveryError(f"connection lost: {stale.__cause__}") from stale
            self.stale_reconnects += 1
            self.open()
            self._fresh = False
            try:
                self._transaction(sender, recipient, message)
            except _StaleConnection as again:
                self._drop()
                raise DeliveryError(f"connection lost: {again.__cause__}") from again
        self._sent_on_connection += 1
        return "250 ok"

    def _transaction(self, sender: str, recipient: str, message: bytes) -> None:
        """MAIL, RCPT, DATA on the open connection; raise _StaleConnection before DATA."""
        smtp = self._smtp
        assert smtp is not None
        phase = "MAIL"
        reply: bytes | str
        try:
            code, reply = smtp.mail(sender)
            if code == 250:
                phase = "RCPT"
                code, reply = smtp.rcpt(recipient)
                if code in (250, 251):
                    phase = "DATA"
                    code, reply = smtp.data(message)
        except smtplib.SMTPResponseException as exc:  # DATA answered with no 354
            code, reply = exc.smtp_code, exc.smtp_error
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            if phase != "DATA":
                raise _StaleConnection(phase) from exc
            self._drop()
            raise DeliveryError(f"connection lost: {exc}") from exc
        except OSError as exc:  # a timeout: the server is there but stuck
            self._drop()
            raise DeliveryError(f"connection lost: {exc}") from exc
        except smtplib.SMTPException as exc:
            self._drop()
            raise DeliveryError(f"smtp error: {exc}") from exc
        if code in (250, 251) and phase == "DATA":
            return
        if code == 421:  # "closing the connection": the next send reconnects
            self._drop()
        else:
            self._reset()
        raise DeliveryError(f"{code} {_text(reply)}", code=code, permanent=code >= 500)

    def _reset(self) -> None:
        """RSET after a refusal so the connection can carry the next message."""
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()

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


class _StaleConnection(Exception):
    """The connection was found closed before the message went out (at MAIL or RCPT)."""


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).replace(
        "\n", " "
    )
