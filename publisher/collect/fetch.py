"""Fetching remote feeds safely (network I/O): SSRF guard, conditional GET, size and time caps.

Every hop of a fetch resolves the host itself, refuses addresses that are not global
(loopback, private, link-local such as the 169.254.169.254 metadata service, shared,
reserved) unless the source sets ``allow_private``, and then connects to the very address
it checked, sending the original host in ``Host`` and as the TLS server name. Redirects
are followed by hand (at most 5), each one checked again. Bodies are read in chunks and
cut off at ``max_bytes``; a whole fetch has a deadline as well as connect and read
timeouts, so a server that trickles bytes cannot hold a run.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from publisher import __version__
from publisher.errors import ContentError

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"publisher/{__version__} (feed collector; +https://github.com/publisher/publisher)"
REDIRECTS = {301, 302, 303, 307, 308}

Resolver = Callable[[str, int], list[str]]


class FetchError(ContentError):
    """A feed could not be fetched; the message says why in one line."""


@dataclass(frozen=True)
class FetchResult:
    """What a fetch returned. ``body`` is empty when ``not_modified``."""

    url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


@dataclass(frozen=True)
class FetchLimits:
    """Per-source limits of a fetch."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_address(address: str, host: str, allow_private: bool) -> None:
    """Refuse an address that is not on the public internet.

    ``allow_private`` admits loopback and private networks (a local CMS, the tests), but
    never link-local addresses: 169.254.169.254 is the cloud metadata service.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        raise FetchError(f"refused {host!r}: it resolves to {ip}, a link-local or special address")
    if allow_private or ip.is_global:
        return
    raise FetchError(
        f"refused {host!r}: it resolves to {ip}, which is not a public address "
        "(set allow_private = true on the source to allow it)"
    )


def _pinned_url(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits = FetchLimits(),
    resolver: Resolver = system_resolver,
    client: httpx.Client | None = None,
) -> FetchResult:
    """GET ``url`` under the guard; a 304 answer comes back with ``not_modified``."""
    import httpx  # imported on use: runs without feed sources never load it

    own = client is None
    client = client or httpx.Client(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
    )
    deadline = time.monotonic() + limits.total_timeout
    try:
        for _ in range(limits.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError(f"{url!r}: only http and https URLs are fetched")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = resolver(parts.hostname, port)
            if not addresses:
                raise FetchError(f"cannot resolve {parts.hostname!r}")
            for address in addresses:
                check_address(address, parts.hostname, limits.allow_private)
            headers = {
                "Host": parts.netloc,
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "gzip, deflate",
            }
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
            request = client.build_request(
                "GET", _pinned_url(url, addresses[0]), headers=headers, extensions=extensions
            )
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise FetchError(f"{url}: timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {exc}") from exc
            try:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code == 304:
                    return FetchResult(url, 304, b"", etag, last_modified, not_modified=True)
                if response.status_code >= 400:
                    raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
                body = _read_capped(response, url, limits.max_bytes, deadline)
                return FetchResult(
                    url=url,
                    status=response.status_code,
                    body=body,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
            finally:
                response.close()
        raise FetchError(f"{url}: more than {limits.max_redirects} redirects")
    finally:
        if own:
            client.close()


def _read_capped(response: httpx.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    import httpx

    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url}: body of {int(declared)} bytes is over max_bytes ({max_bytes})")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"{url}: body is over max_bytes ({max_bytes})")
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: timed out (the whole fetch took too long)")
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise FetchError(f"{url}: timed out while reading the body") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {exc}") from exc
    return b"".join(chunks)
