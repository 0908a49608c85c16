"""WebSub publisher ping (network I/O): tell a hub that feeds changed.

The ping is the de facto publish request of WebSub hubs: a form POST of
``hub.mode=publish`` with one ``hub.url`` per changed feed. Any 2xx answer is success.
Failures raise :class:`HubError`; the feed writer retries on its next build, so a hub
never fails a build. :func:`announce` decides what the operator hears about it: a warning
with the reason on the first failure of a run of failures, a quiet "still failing" note
after that, and a note when the hub recovers (the run is kept in the feed writer's state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher import __version__
from publisher.errors import PublisherError


class HubError(PublisherError):
    """The WebSub hub could not be reached or refused the ping."""


def publish(hub: str, topics: Sequence[str], *, timeout: float = 10.0) -> None:
    """POST ``hub.mode=publish`` for ``topics`` to ``hub``; raise HubError on failure."""
    if not topics:
        return
    form = {"hub.mode": "publish", "hub.url": list(topics)}
    headers = {"User-Agent": f"publisher/{__version__} (WebSub publisher)"}
    import httpx  # imported on use: most runs never ping a hub

    try:
        response = httpx.post(hub, data=form, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise HubError(f"WebSub hub {hub}: {exc.__class__.__name__}: {exc}") from exc
    if not response.is_success:
        body = " ".join(response.text.split())[:200]
        raise HubError(f"WebSub hub {hub} answered {response.status_code}: {body}")


@dataclass(frozen=True)
class Outcome:
    """What one ping attempt leaves behind, and what to tell the operator."""

    pending: list[str]  # topics still owed to the hub
    failing: dict[str, Any] | None  # the current run of failures: since, reason, attempts
    note: str = ""  # an informational line (pinged, still failing, recovered)
    warning: str = ""  # set only on the first failure of a run


def announce(
    hub: str,
    topics: Sequence[str],
    failing: dict[str, Any] | None,
    now: datetime,
    ping: Callable[[str, Sequence[str]], None],
) -> Outcome:
    """Ping ``hub`` for ``topics``; ``failing`` is the run of failures before this one."""
    try:
        ping(hub, topics)
    except HubError as exc:
        reason = str(exc)
        if not failing:
            return Outcome(
                list(topics),
                {"since": now.isoformat(), "reason": reason, "attempts": 1},
                warning=f"{reason}; will retry on the next build "
                "(not warned again until the hub recovers)",
            )
        attempts = int(failing.get("attempts", 1)) + 1
        since = failing.get("since", "")
        return Outcome(
            list(topics),
            {"since": since, "reason": reason, "attempts": attempts},
            note=f"hub still failing since {since} ({attempts} attempts): {reason}",
        )
    note = f"pinged {hub} for {len(topics)} feed(s)"
    if failing:
        note += (
            f"; the hub recovered after {failing.get('attempts', 1)} failed attempt(s) "
            f"since {failing.get('since', '?')}"
        )
    return Outcome([], None, note=note)
