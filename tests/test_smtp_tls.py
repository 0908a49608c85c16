"""SMTP security against a real aiosmtpd: STARTTLS, implicit TLS, certificate checks, AUTH."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import RecordingHandler, SmtpServer, free_port, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
USER, PASSWORD = "mailer", "s3cret-relay-password"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def _server(certificate: ssl.SSLContext, *, implicit: bool) -> Iterator[SmtpServer]:
    handler = RecordingHandler()
    port = free_port()
    kwargs = {"authenticator": _authenticator, "auth_require_tls": True}
    if implicit:
        # aiosmtpd does not count an implicit-TLS socket as "TLS" for auth_require_tls;
        # the session is encrypted all the same.
        kwargs["auth_require_tls"] = False
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, ssl_context=certificate, **kwargs
        )
    else:
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=certificate,
            require_starttls=True,
            **kwargs,
        )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(certificate: ssl.SSLContext) -> Iterator[SmtpServer]:
    yield from _server(certificate, implicit=False)


@pytest.fixture
def tls_server(certificate: ssl.SSLContext) -> Iterator[SmtpServer]:
    yield from _server(certificate, implicit=True)


def _config(tmp_path: Path, server: SmtpServer, *, security: str, verify: bool) -> Path:
    config = write_config(tmp_path, transport="smtp", smtp=server)
    text = config.read_text(encoding="utf-8").replace(
        'security = "none"',
        f'security = "{security}"\nusername = "{USER}"\npassword_env = "TEST_SMTP_PASSWORD"\n'
        f"verify_certificates = {'true' if verify else 'false'}",
    )
    config.write_text(text, encoding="utf-8")
    run_cli(config, "subscribers", "add", "ana@example.org", now=NOW)
    return config


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_auth_deliver(
    tmp_path: Path, security: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(f"{security}_server")
    config = _config(tmp_path, server, security=security, verify=False)
    result = run_cli(config, "run", "--once", now=NOW, env={"TEST_SMTP_PASSWORD": PASSWORD})
    assert "1 sent, 0 failed" in result.stdout
    assert [rcpts for _, rcpts, _ in server.handler.messages] == [["ana@example.org"]]


def test_self_signed_certificate_is_refused_when_verifying(
    tmp_path: Path, starttls_server: SmtpServer
) -> None:
    config = _config(tmp_path, starttls_server, security="starttls", verify=True)
    result = run_cli(
        config, "run", "--once", now=NOW, env={"TEST_SMTP_PASSWORD": PASSWORD}, check=False
    )
    assert result.returncode == 1
    assert (
        "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate verify failed" in result.stderr
    )
    assert starttls_server.handler.messages == []


def test_wrong_password_and_missing_password(tmp_path: Path, starttls_server: SmtpServer) -> None:
    config = _config(tmp_path, starttls_server, security="starttls", verify=False)
    wrong = run_cli(
        config, "run", "--once", now=NOW, env={"TEST_SMTP_PASSWORD": "nope"}, check=False
    )
    assert wrong.returncode == 1 and "authentication failed: 535" in wrong.stderr
    missing = run_cli(config, "run", "--once", now=NOW, check=False)
    assert missing.returncode == 1 and "password environment variable" in missing.stderr
    assert starttls_server.handler.messages == []
    # Nothing was lost: with the right password the queued message goes out.
    fixed = run_cli(config, "run", "--once", now=NOW, env={"TEST_SMTP_PASSWORD": PASSWORD})
    assert "1 sent" in fixed.stdout
