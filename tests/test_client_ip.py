"""``[web] trusted_proxies``: whose X-Forwarded-For the rate limits and audit log believe."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from publisher.web.common import client_ip

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


def _request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        # No proxies configured: the header is never believed.
        ("203.0.113.9", ["198.51.100.1"], [], "203.0.113.9"),
        # An untrusted peer cannot choose its address by sending the header.
        ("203.0.113.9", ["198.51.100.1"], PROXIES, "203.0.113.9"),
        # Behind a trusted proxy: the hop it appended.
        ("10.1.2.3", ["198.51.100.1"], PROXIES, "198.51.100.1"),
        # A client's forged entry on the left loses to the one the proxy appended.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], PROXIES, "198.51.100.1"),
        # Two trusted proxies in a row are skipped; header lines are joined in order.
        ("10.1.2.3", ["198.51.100.1", "10.9.9.9"], PROXIES, "198.51.100.1"),
        ("::1", ["2001:db8::7"], PROXIES, "2001:db8::7"),
        # Garbage written by a proxy's client falls back to the peer, never to the garbage.
        ("10.1.2.3", ["not-an-ip"], PROXIES, "10.1.2.3"),
        # Only proxies in the chain: the peer.
        ("10.1.2.3", ["10.4.4.4"], PROXIES, "10.1.2.3"),
    ],
)  # fmt: skip
def test_client_ip_believes_only_trusted_proxies(
    peer: str, forwarded: list[str], proxies: list, expected: str
) -> None:
    assert client_ip(_request(peer, *forwarded), proxies) == expected
