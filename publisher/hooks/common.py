"""What every provider's webhook shares: the refusal, the secret from the environment,
the JSON body (pure but for reading environment variables)."""

from __future__ import annotations

import json
import time
from typing import Any

from publisher.config import secret_from_env
from publisher.config.values import parse_duration


class Refused(Exception):
    """A webhook request turned away: ``status`` (400, 403, 503) and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def secret(env_name: str, what: str) -> str:
    """The secret in ``$env_name``; 503 when the operator has not set it (not our caller's
    fault, and the provider retries later)."""
    value = secret_from_env(env_name, what=what)
    if not value:
        raise Refused(503, f"{what} is not set: export ${env_name} (see README, Provider webhooks)")
    return value


def json_body(body: bytes) -> Any:
    """The request body as JSON; 400 when it is not."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the body is not JSON") from None


def fresh(timestamp: str, max_age: str, what: str) -> None:
    """Refuse (403) a signed timestamp older (or further ahead) than ``max_age``: a
    captured request cannot be replayed later."""
    try:
        moment = float(timestamp)
    except (TypeError, ValueError):
        raise Refused(403, f"{what}: no valid signed timestamp") from None
    if abs(time.time() - moment) > parse_duration(max_age, "max_age"):
        raise Refused(403, f"{what}: the signed timestamp is too old (replay?)")
