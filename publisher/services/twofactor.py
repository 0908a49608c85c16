"""The console's optional second factor (store I/O): TOTP enrolment and recovery codes.

TOTP is RFC 6238 (30-second steps, 6 digits, SHA-1: what every authenticator app reads from
an ``otpauth://`` URI), via pyotp. A code is accepted one step either side of now (clock
drift) and only once: the last accepted step is stored and later logins need a newer one.
Enrolment gives :data:`RECOVERY_CODES` one-time recovery codes of 80 random bits each,
shown once; the store keeps their SHA-256 (the codes are random, so a fast hash is enough).
"""

from __future__ import annotations

import hashlib
import json
import secrets

import pyotp
import segno

from publisher.app import App
from publisher.errors import OperatorError
from publisher.models import Operator
from publisher.services.audit import Actor, entry

RECOVERY_CODES = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read off paper


def new_secret() -> str:
    """A fresh TOTP secret (160 bits, base32)."""
    return pyotp.random_base32(32)


def provisioning_uri(app: App, email: str, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans, labelled with the site."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=app.config.site.title)


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an inline SVG element (no image request, no script)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


def _normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _hash(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _step_of(secret: str, code: str, now_ts: float) -> int | None:
    """The time step ``code`` belongs to (now, or one either side), or None."""
    totp = pyotp.TOTP(secret)
    step = int(now_ts // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate).encode(), code.encode()):
            return candidate
    return None


def enrol(app: App, operator: Operator, secret: str, code: str, *, actor: Actor) -> list[str]:
    """Turn on TOTP for ``operator`` once ``code`` proves their app holds ``secret``.

    Returns the recovery codes, which are shown this once. Refuses an operator already
    enrolled (an admin's ``operators reset-2fa`` clears it first) and a wrong code.
    """
    if operator.two_factor:
        raise OperatorError(f"{operator.email} already has a second factor")
    try:
        step = _step_of(secret, _normal(code), app.clock().timestamp())
    except (ValueError, TypeError) as exc:  # a secret that is not base32
        raise OperatorError("this enrolment is broken: start again") from exc
    if step is None:
        raise OperatorError("that code is not right: check the device's clock and try again")
    codes = [_new_code() for _ in range(RECOVERY_CODES)]
    audit = entry(app, actor, "operator.2fa_enrol", operator.email)
    app.store.update_operator(
        operator.email, audit, totp_secret=secret, totp_last_step=step,
        recovery_codes=json.dumps([_hash(c) for c in codes]),
    )  # fmt: skip
    return codes


def recovery_codes_left(operator: Operator) -> int:
    """How many unused recovery codes the operator has."""
    return len(json.loads(operator.recovery_codes or "[]"))


def verify(app: App, operator: Operator, code: str, *, actor: Actor) -> bool:
    """Whether ``code`` (6 digits, or a recovery code) is a valid second factor now.

    Each is good once: the TOTP step is claimed, the recovery code removed, both by a
    compare-and-set in the store, so two concurrent logins cannot share one code.
    """
    if operator.totp_secret is None:
        return False
    normal = _normal(code)
    if normal.isascii() and normal.isdigit() and len(normal) == 6:
        step = _step_of(operator.totp_secret, normal, app.clock().timestamp())
        return step is not None and app.store.claim_totp_step(operator.email, step)
    stored = operator.recovery_codes or "[]"
    hashes = json.loads(stored)
    if _hash(normal) not in hashes:
        return False
    left = [h for h in hashes if h != _hash(normal)]
    if not app.store.swap_recovery_codes(operator.email, stored, json.dumps(left)):
        return False
    app.store.record_audit(
        entry(app, actor, "operator.recovery_code", operator.email, f"{len(left)} left")
    )
    return True
