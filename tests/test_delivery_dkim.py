"""DKIM: messages sent through a real SMTP server verify with dkimpy and a local DNS function."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import dkim
import pytest

from publisher.app import open_app
from publisher.config import load
from publisher.errors import ConfigError
from publisher.services import collecting, sending
from tests.conftest import SmtpServer, write_config
from tests.test_delivery import T0, Clock, ScriptedHandler, scripted  # noqa: F401


def _keypair(folder: Path) -> tuple[Path, bytes]:
    """An RSA key made by openssl, and the DNS TXT record that publishes it."""
    key = folder / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
        check=True, capture_output=True,
    )  # fmt: skip
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_sent_messages_are_signed_including_list_unsubscribe_post(
    tmp_path: Path,
    scripted: SmtpServer,  # noqa: F811
) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    handler.keep_raw = True
    key, record = _keypair(tmp_path)
    config_path = write_config(
        tmp_path,
        transport="smtp",
        smtp=scripted,
        extra=(
            f'\n[delivery.dkim]\nselector = "news2026"\ndomain = "news.example.org"\n'
            f'private_key_path = "{key}"\n'
        ),
    )
    app = open_app(load(config_path), clock=Clock(T0))
    app.store.add_subscriber("a@example.org", "Ann", ["daily"], T0)
    collecting.collect(app)
    [report] = sending.send_digest(app, "daily")
    assert report.sent == 1
    raw = handler.received[0].raw
    assert raw is not None and raw.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news2026._domainkey.news.example.org."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    signed = re.search(rb"h=([^;]+);", re.sub(rb"\r\n\s+", b"", raw))
    assert signed is not None
    headers = [h.strip() for h in signed[1].decode().lower().split(":")]
    for name in ("from", "subject", "date", "message-id", "list-unsubscribe",
                 "list-unsubscribe-post"):  # fmt: skip
        assert name in headers

    tampered = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks",
    )
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dns)
    app.store.close()


def test_dkim_config_errors_are_one_clear_line(tmp_path: Path) -> None:
    config_path = write_config(
        tmp_path, extra='\n[delivery.dkim]\nselector = "s"\ndomain = "news.example.org"\n'
    )
    with pytest.raises(ConfigError, match=r"delivery\.dkim: set exactly one of private_key_path"):
        load(config_path)
    config_path.write_text(config_path.read_text() + 'selectr = "x"\n')
    with pytest.raises(ConfigError, match=r"delivery\.dkim\.selectr: unknown key"):
        load(config_path)


def _retouch(raw: bytes, name: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """``raw`` with the header ``name`` (in the message head only) changed by ``change``."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = re.split(rb"\r\n(?![ \t])", head)  # one entry per header, folded lines kept
    hits = [i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + b":")]
    assert len(hits) == 1, (name, hits)
    lines[hits[0]] = change(lines[hits[0]])
    return b"\r\n".join(lines) + sep + body


def test_the_signature_covers_to_reply_to_list_id_and_content_type(
    tmp_path: Path,
    scripted: SmtpServer,  # noqa: F811
) -> None:
    handler: ScriptedHandler = scripted.handler  # type: ignore[assignment]
    handler.keep_raw = True
    key, record = _keypair(tmp_path)
    config_path = write_config(
        tmp_path,
        transport="smtp",
        smtp=scripted,
        extra=(
            f'\n[delivery.dkim]\nselector = "news2026"\ndomain = "news.example.org"\n'
            f'private_key_path = "{key}"\n'
        ),
    )
    config_path.write_text(
        config_path.read_text().replace(
            "retry_base_seconds = 60\n",
            'retry_base_seconds = 60\nreply_to = "Newsroom <desk@news.example.org>"\n',
        )
    )
    app = open_app(load(config_path), clock=Clock(T0))
    app.store.add_subscriber("ann@example.org", "Ann", ["daily"], T0)
    collecting.collect(app)
    [report] = sending.send_digest(app, "daily")
    app.store.close()
    assert report.sent == 1
    raw = handler.received[0].raw
    assert raw is not None

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news2026._domainkey.news.example.org."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", raw.partition(b"\r\n\r\n")[0])
    signed = re.search(rb"\bh=([^;]+);", unfolded)
    assert signed is not None
    names = {h.strip() for h in signed[1].decode().lower().split(":")}
    assert {"to", "reply-to", "list-id", "content-type"} <= names
    for header in (b"To", b"Reply-To", b"List-Id", b"Content-Type"):
        assert re.search(rb"(?im)^" + header + rb":", raw.partition(b"\r\n\r\n")[0]), header

    # Each of them, changed after signing, breaks the signature.
    tampered = {
        b"To": lambda line: line.replace(b"ann@example.org", b"eve@example.org"),
        b"Reply-To": lambda line: line.replace(b"desk@news.example.org", b"eve@example.net"),
        b"List-Id": lambda line: line.replace(b"daily.", b"other."),
        b"Content-Type": lambda line: line.replace(b"multipart/alternative", b"multipart/mixed"),
    }
    for header, change in tampered.items():
        changed = _retouch(raw, header, change)
        assert changed != raw, header
        assert not dkim.verify(changed, dnsfunc=dns), header
    # A header outside the signature may be added on the way (a relay's Received:) and
    # the message still verifies: the failures above come from the signed headers.
    relayed = b"Received: from relay.example.net by mx.example.org; 28 Nov 2026\r\n" + raw
    assert dkim.verify(relayed, dnsfunc=dns)
