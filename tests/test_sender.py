"""The sender through the real CLI and a real aiosmtpd server: ``[delivery] from`` as
"Name <address>" or a bare address, and the SMTP password variable named when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SmtpServer, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"  # after the daily 07:00 New York fire


def _with_from(config: Path, value: str) -> Path:
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('from = "newsletter@news.example.org"', f"from = {value}"), encoding="utf-8"
    )
    return config


def test_from_with_a_display_name_names_the_sender(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = _with_from(
        write_config(tmp_path, transport="smtp", smtp=smtp_server), '"Health News <news@example.org>"'
    )
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    run_cli(config, "collect", now=NOW)
    run_cli(config, "send", "daily", now=NOW)
    [(mail_from, rcpt, _raw)] = smtp_server.handler.messages
    assert mail_from == "news@example.org"  # the envelope takes the bare address
    assert rcpt == ["ana@example.org"]
    [message] = smtp_server.handler.parsed()
    assert message["From"].addresses[0].display_name == "Health News"
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert message["Message-ID"].endswith("@example.org>")


def test_a_bare_from_takes_the_site_title_as_its_name(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    run_cli(config, "collect", now=NOW)
    run_cli(config, "send", "daily", now=NOW)
    [message] = smtp_server.handler.parsed()
    assert message["From"].addresses[0].display_name == "Pleura Health News"
    assert message["From"].addresses[0].addr_spec == "newsletter@news.example.org"
    assert smtp_server.handler.messages[0][0] == "newsletter@news.example.org"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"Health News news@example.org"', "invalid characters before the @-sign"),
        ('"a@example.org, b@example.org"', "more than one address"),
        ('"Health News <news@example.org"', "unclosed '<'"),
        ('"Health News <news@localhost>"', "after the @-sign is not valid"),
        ('"Health News <news@example.org>\\r\\nBcc: x@example.org"', "control character"),
        ('""', "is not an address"),
    ],
)
def test_a_bad_from_is_one_line_naming_file_line_and_key(tmp_path: Path, value: str, reason: str) -> None:
    config = _with_from(write_config(tmp_path), value)
    line = next(
        n for n, text in enumerate(config.read_text().splitlines(), 1) if text.startswith("from =")
    )
    result = run_cli(config, "status", now=NOW, check=False)
    assert result.returncode == 1
    [error] = result.stderr.strip().splitlines()
    assert f"config.toml:{line}: delivery.from" in error and reason in error
    assert 'write "Name <news@example.org>"' in error


def test_a_missing_smtp_password_names_the_variable(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    config.write_text(
        config.read_text().replace(
            "timeout = 10\n", 'timeout = 10\nusername = "news"\npassword_env = "PLEURA_SMTP_PASSWORD"\n'
        ),
        encoding="utf-8",
    )
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    run_cli(config, "collect", now=NOW)
    env = {"PLEURA_SMTP_PASSWORD": ""}  # set but empty counts as missing
    sent = run_cli(config, "send", "daily", now=NOW, check=False, env=env)
    assert sent.returncode == 1
    assert "PLEURA_SMTP_PASSWORD" in sent.stderr and "export PLEURA_SMTP_PASSWORD" in sent.stderr
    checked = run_cli(config, "check", now=NOW, check=False, env=env)
    [smtp_line] = [x for x in checked.stdout.splitlines() if x.split()[1:2] == ["smtp"]]
    assert smtp_line.startswith("FAIL") and "PLEURA_SMTP_PASSWORD" in smtp_line
    assert smtp_server.handler.messages == []


def test_check_claims_a_login_only_when_one_happened(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    run_cli(config, "db", "upgrade")
    result = run_cli(config, "check", now=NOW)
    [smtp_line] = [x for x in result.stdout.splitlines() if x.split()[1:2] == ["smtp"]]
    assert smtp_line.startswith("ok") and "login accepted" not in smtp_line
    assert "no login tried ([smtp] username is not set)" in smtp_line
    assert smtp_server.handler.messages == []
