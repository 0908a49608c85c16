"""Operator accounts of the console: adding, removing, passwords, 2FA reset (store I/O).

Plain functions for every door: the CLI's ``publisher operators`` calls them now, the
console calls the same ones. Passwords are hashed with argon2id (argon2-cffi's defaults,
the parameters RFC 9106 recommends for memory-constrained hosts); the hash carries its
parameters, so a later change of defaults rehashes each password at its next login. Every
change writes an audit entry naming the :class:`~publisher.services.audit.Actor`.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email

from publisher.app import App
from publisher.errors import OperatorError
from publisher.models import ROLES, Operator
from publisher.services.audit import Actor, entry

MIN_PASSWORD = 12
# argon2 takes any length, but a megabyte "password" would make each login a small DoS.
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()


def normalize_email(raw: str) -> str:
    """An operator's address checked (syntax only, no DNS) and in canonical lower case."""
    raw = raw.strip()
    try:
        result = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise OperatorError(f"invalid address {raw!r}: {exc}") from exc
    return result.normalized.lower()


def check_password(password: str, email: str) -> None:
    """Refuse a password that is empty, short, overlong, one repeated character, or the
    operator's own address, with a line that says which."""
    if not password.strip():
        raise OperatorError("the password is empty")
    if len(password) < MIN_PASSWORD:
        raise OperatorError(
            f"the password is too short: {len(password)} characters, at least {MIN_PASSWORD}"
        )
    if len(password) > MAX_PASSWORD:
        raise OperatorError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if len(set(password)) < 4:
        raise OperatorError("the password is too weak: use at least 4 different characters")
    if email.lower() in password.lower():
        raise OperatorError("the password must not contain the operator's address")


def _role(role: str) -> str:
    if role not in ROLES:
        raise OperatorError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def get_operator(app: App, email: str) -> Operator:
    """The operator with this address, or an OperatorError naming it."""
    address = normalize_email(email)
    operator = app.store.operator(address)
    if operator is None:
        raise OperatorError(f"no operator {address} (see `publisher operators list`)")
    return operator


def list_operators(app: App) -> list[Operator]:
    """Every operator, by address."""
    return app.store.list_operators()


def add_operator(app: App, email: str, role: str, password: str, *, actor: Actor) -> Operator:
    """Create an operator with ``role`` (viewer, editor, admin) and ``password``.

    Refuses an invalid address, an unknown role, a weak password and an address that is
    already an operator.
    """
    address = normalize_email(email)
    _role(role)
    check_password(password, address)
    audit = entry(app, actor, "operator.add", address, f"role={role}")
    if not app.store.add_operator(address, role, _HASHER.hash(password), app.clock(), audit):
        raise OperatorError(
            f"{address} is already an operator (`operators passwd` changes the password)"
        )
    return get_operator(app, address)


def remove_operator(app: App, email: str, *, actor: Actor) -> None:
    """Delete an operator; their console sessions end with them.

    The last admin is never removed: someone must be able to manage operators and tokens
    from the console (add another admin first).
    """
    address = normalize_email(email)
    outcome = app.store.remove_operator(address, entry(app, actor, "operator.remove", address))
    if outcome == "missing":
        raise OperatorError(f"no operator {address} (see `publisher operators list`)")
    if outcome == "last admin":
        raise OperatorError(
            f"{address} is the last admin: not removed (add another admin first)"
        )


def set_password(app: App, email: str, password: str, *, actor: Actor) -> None:
    """Give an operator a new password (checked as for a new operator); their console
    sessions end."""
    operator = get_operator(app, email)
    check_password(password, operator.email)
    audit = entry(app, actor, "operator.passwd", operator.email)
    app.store.update_operator(operator.email, audit, password_hash=_HASHER.hash(password))
    # Whoever knew the old password is logged out everywhere with it.
    app.store.end_console_sessions(operator.email)


def reset_2fa(app: App, email: str, *, actor: Actor) -> bool:
    """Clear an operator's TOTP secret and recovery codes: they enrol again at their next
    login. Returns whether they had a second factor."""
    operator = get_operator(app, email)
    audit = entry(
        app, actor, "operator.reset_2fa", operator.email,
        "had 2FA" if operator.two_factor else "had no 2FA",
    )  # fmt: skip
    app.store.update_operator(operator.email, audit, totp_secret=None, recovery_codes=None)
    return operator.two_factor


@cache
def _decoy_hash() -> str:
    return _HASHER.hash("not a password: only makes a miss cost as much as a hit")


def verify_password(app: App, email: str, password: str) -> Operator | None:
    """The operator if ``password`` is theirs, else None (unknown address, wrong password).

    An unknown address costs one argon2 verification too, so the time of an answer does
    not tell which addresses are operators. A hash made with older parameters is replaced.
    """
    if len(password) > MAX_PASSWORD:  # no stored password is this long: skip the hashing
        return None
    try:
        address = normalize_email(email)
    except OperatorError:
        address = ""
    operator = app.store.operator(address) if address else None
    stored = operator.password_hash if operator is not None else _decoy_hash()
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if operator is None:
        return None
    if _HASHER.check_needs_rehash(stored):
        app.store.update_operator(address, None, password_hash=_HASHER.hash(password))
    return operator


def record_login(app: App, operator: Operator, *, actor: Actor) -> None:
    """Note a successful login: the operator's last login time and an audit entry."""
    audit = entry(app, actor, "operator.login", operator.email)
    app.store.update_operator(operator.email, audit, last_login_at=app.clock())
