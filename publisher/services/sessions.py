"""Console logins (store I/O): the password step, the second-factor step, sessions, limits.

A session id is 32 random bytes handed to the browser once; the store keeps its SHA-256,
so a copy of the database logs nobody in. A session lasts ``[admin] session_hours``; one
waiting for the second factor lasts :data:`PENDING_MINUTES`. Failed logins are counted in
the store per client IP and per operator address (hashed) over ``[admin] login_window``;
at the limit further attempts are refused before any password is checked, so the limit
cannot be used to learn a password, and it holds across every ``serve`` process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from publisher.app import App
from publisher.config import parse_duration
from publisher.errors import PublisherError
from publisher.models import Operator
from publisher.services import operators as accounts
from publisher.services import twofactor
from publisher.services.audit import Actor, record_audit
from publisher.store import ConsoleSession

PENDING_MINUTES = 5
FULL, PENDING = "ok", "2fa"


class LoginRefused(PublisherError):
    """A login that did not succeed: wrong credentials (``retry_after`` 0) or too many
    failures (``retry_after``: seconds until the window lets another attempt through)."""

    def __init__(self, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Login:
    """A started session: the id for the cookie (shown once) and whether the second
    factor is still due."""

    token: str
    operator: Operator
    needs_second_factor: bool


def token_hash(token: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(token.encode()).hexdigest()


def _keys(email: str, ip: str) -> tuple[str, str]:
    address = email.strip().lower()
    return f"ip:{ip}", "address:" + hashlib.sha256(address.encode()).hexdigest()


def _window(app: App) -> timedelta:
    return timedelta(seconds=parse_duration(app.config.admin.login_window, "[admin] login_window"))


def check_login_limits(app: App, email: str, ip: str) -> None:
    """Raise :class:`LoginRefused` when the IP or the address is at its limit of failures."""
    admin = app.config.admin
    window = _window(app)
    ip_key, address_key = _keys(email, ip)
    counts = app.store.login_failures((ip_key, address_key), app.clock() - window)
    if counts[ip_key] >= admin.login_per_ip or counts[address_key] >= admin.login_per_address:
        raise LoginRefused(
            "too many failed logins: wait and try again", int(window.total_seconds())
        )


def _failed(app: App, email: str, ip: str, why: str) -> LoginRefused:
    """Count a failure against both keys, audit it, and return the refusal to raise."""
    now = app.clock()
    app.store.record_login_failure(_keys(email, ip), now, now - _window(app))
    record_audit(app, Actor(email.strip()[:320] or "(empty)", ip), "operator.login_failed", why)
    return LoginRefused("wrong address, password or code")


def _start(app: App, operator: Operator, stage: str, ip: str) -> str:
    now = app.clock()
    hours = app.config.admin.session_hours
    expires = now + (
        timedelta(minutes=PENDING_MINUTES) if stage == PENDING else timedelta(hours=hours)
    )
    token = secrets.token_urlsafe(32)
    app.store.create_console_session(token_hash(token), operator.email, stage, now, expires, ip)
    return token


def password_login(app: App, email: str, password: str, ip: str) -> Login:
    """The first step: check the limits, then the password. With 2FA enrolled the session
    only allows :func:`second_factor_login` until it is given."""
    check_login_limits(app, email, ip)
    operator = accounts.verify_password(app, email, password)
    if operator is None:
        raise _failed(app, email, ip, "password")
    app.store.clear_login_failures(_keys(operator.email, ip)[1])
    if operator.two_factor:
        return Login(_start(app, operator, PENDING, ip), operator, True)
    accounts.record_login(app, operator, actor=Actor(operator.email, ip))
    return Login(_start(app, operator, FULL, ip), operator, False)


def second_factor_login(app: App, token: str, code: str, ip: str) -> Operator:
    """The second step: a TOTP code or a recovery code for a pending session."""
    session = app.store.console_session(token_hash(token), app.clock())
    operator = None if session is None else app.store.operator(session.operator_email)
    if session is None or operator is None or session.stage != PENDING:
        raise LoginRefused("this login has expired: start again")
    check_login_limits(app, operator.email, ip)
    if not twofactor.verify(app, operator, code, actor=Actor(operator.email, ip)):
        raise _failed(app, operator.email, ip, "second factor")
    app.store.clear_login_failures(_keys(operator.email, ip)[1])
    expires = app.clock() + timedelta(hours=app.config.admin.session_hours)
    app.store.promote_console_session(token_hash(token), expires)
    accounts.record_login(app, operator, actor=Actor(operator.email, ip))
    return operator


def session_operator(app: App, token: str | None) -> tuple[ConsoleSession, Operator] | None:
    """The live session with this id and its operator (read now: a changed role counts
    from the next request, a removed operator is logged out), or None."""
    if not token:
        return None
    session = app.store.console_session(token_hash(token), app.clock())
    if session is None:
        return None
    operator = app.store.operator(session.operator_email)
    return None if operator is None else (session, operator)


def logout(app: App, token: str, *, actor: Actor) -> None:
    """End a session and note it in the audit log."""
    app.store.end_console_session(token_hash(token))
    record_audit(app, actor, "operator.logout", actor.name)
