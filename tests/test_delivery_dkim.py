"""DKIM: messages sent through a real SMTP server verify with dkimpy and a local DNS function."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import dkim
import pytest

from publisher import pipeline
from publisher.config import load
from publisher.errors import ConfigError
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
    tmp_path: Path, scripted: SmtpServer  # noqa: F811
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
    app = pipeline.open_app(load(config_path), clock=Clock(T0))
    app.store.add_subscriber("a@example.org", "Ann", ["daily"], T0)
    pipeline.collect(app)
    [report] = pipeline.send_digest(app, "daily")
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
