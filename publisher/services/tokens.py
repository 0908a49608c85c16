"""API tokens: creating, listing, revoking, and authenticating a request's token (store I/O).

A token reads ``pub_<prefix>_<secret>``: the prefix is public (``tokens list`` shows it, so
a token found in a log or a repository can be named and revoked), the secret is 32 random
bytes. It is shown once, at creation; the store keeps only its SHA-256.

Why a plain SHA-256 and not argon2 as for passwords: a password is guessable, so its hash
must be slow to brute-force; a token is 256 random bits, which no amount of guessing finds,
fast hash or slow. A slow hash would only make every API request pay for it. No salt is
needed either: tokens never repeat, and no precomputed table covers 2**256 values. Nor a
key: keyed with the site secret, rotating that secret would void every token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from publisher.app import App
from publisher.config.values import parse_duration
from publisher.errors import ConfigError, OperatorError
from publisher.models import SCOPES, ApiToken
from publisher.services.audit import Actor, entry

TOKEN_PREFIX = "pub_"
# pub_ + 12 hex + _ + 43 URL-safe base64 characters (32 bytes); anything else is refused
# before the store is asked.
_TOKEN = re.compile(r"^pub_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def token_hash(raw: str) -> str:
    """The SHA-256 (hex) under which a token is stored (see the module docstring)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def parse_expiry(value: str | None) -> timedelta | None:
    """``90d``, ``12h``, ``2w`` ... -> a lifetime; None or ``never`` -> no expiry."""
    if value is None or value.strip().lower() == "never":
        return None
    try:
        seconds = parse_duration(value, "--expires")
    except ConfigError as exc:
        raise OperatorError(exc.message) from exc
    if seconds <= 0:
        raise OperatorError("--expires: a token must live longer than 0 (or say `never`)")
    return timedelta(seconds=seconds)


def list_tokens(app: App) -> list[ApiToken]:
    """Every token, revoked and expired ones too, oldest first (never their secrets)."""
    return app.store.list_api_tokens()


def create_token(
    app: App, name: str, scope: str, expires_in: timedelta | None, *, actor: Actor
) -> tuple[ApiToken, str]:
    """Create a token; return it and its secret text, which is never available again.

    ``scope`` is read, write or send (each allows what the ones before it allow).
    """
    if not _NAME.match(name):
        raise OperatorError(
            f"invalid token name {name!r}: letters, digits, '.', '_' and '-', at most 100"
        )
    if scope not in SCOPES:
        raise OperatorError(f"unknown scope {scope!r}: choose one of {', '.join(SCOPES)}")
    now = app.clock()
    expires_at = None if expires_in is None else now + expires_in
    # A prefix can collide (48 random bits): try another; a taken name is the caller's.
    for _ in range(3):
        prefix = secrets.token_hex(6)
        raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        detail = f"scope={scope} prefix={prefix} expires=" + (
            "never" if expires_at is None else expires_at.isoformat(timespec="seconds")
        )
        token = app.store.add_api_token(
            name=name,
            prefix=prefix,
            scope=scope,
            token_hash=token_hash(raw),
            now=now,
            expires_at=expires_at,
            audit=entry(app, actor, "token.create", name, detail),
        )
        if token is not None:
            return token, raw
        if app.store.api_token(name) is not None:
            raise OperatorError(
                f"a token named {name!r} exists already (revoked tokens keep their name): "
                "choose another name"
            )
    raise OperatorError("could not create a token with a unique prefix; try again")


def revoke_token(app: App, name: str, *, actor: Actor) -> ApiToken:
    """Revoke the token called ``name``: it is refused from the next request on."""
    token = app.store.api_token(name)
    if token is None:
        raise OperatorError(f"no token named {name!r} (see `publisher tokens list`)")
    if token.revoked_at is not None:
        raise OperatorError(
            f"token {name!r} was revoked already, at {token.revoked_at:%Y-%m-%d %H:%M} UTC"
        )
    now = app.clock()
    app.store.revoke_api_token(name, now, entry(app, actor, "token.revoke", name))
    return app.store.api_token(name) or token


def authenticate_token(app: App, raw: str) -> ApiToken | None:
    """The token a request presents, if it is well-formed, known, not revoked and not
    expired; else None. Records its use (``last_used_at``)."""
    raw = raw.strip()
    if not _TOKEN.match(raw):
        return None
    token = app.store.api_token_by_hash(token_hash(raw))
    now = app.clock()
    if token is None or token.state(now) != "active":
        return None
    app.store.touch_api_token(token.id, now)
    return token
