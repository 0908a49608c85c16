"""WebSub publisher ping (network I/O): tell a hub that feeds changed.

The ping is the de facto publish request of WebSub hubs: a form POST of
``hub.mode=publish`` with one ``hub.url`` per changed feed. Any 2xx answer is success.
Failures raise :class:`HubError`; the feed writer logs them and retries on its next
build, so a hub never fails a build.
"""

from __future__ import annotations

from collections.abc import Sequence

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
