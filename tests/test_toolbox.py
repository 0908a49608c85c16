"""The operator's toolbox through the real CLI: ``check`` against a real aiosmtpd server
with AUTH, ``status --json``, ``issues list|show|cancel|resend``, and the help texts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import RecordingHandler, SmtpServer, free_port, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right-password"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_smtp() -> Iterator[SmtpServer]:
    """A real aiosmtpd server that requires AUTH (over plain SMTP on 127.0.0.1)."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


def _smtp_auth_config(folder: Path, smtp: SmtpServer) -> Path:
    config = write_config(folder, transport="smtp", smtp=smtp)
    text = config.read_text().replace(
        "timeout = 10\n", 'timeout = 10\nusername = "news"\npassword_env = "TEST_SMTP_PASSWORD"\n'
    )
    config.write_text(text, encoding="utf-8")
    run_cli(config, "db", "upgrade")  # check only reads: it never creates the database
    return config


def test_check_passes_with_auth_and_sends_nothing(tmp_path: Path, auth_smtp: SmtpServer) -> None:
    config = _smtp_auth_config(tmp_path, auth_smtp)
    result = run_cli(config, "check", now=NOW, env={"TEST_SMTP_PASSWORD": "right-password"})
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        ["ok", "config"],
        ["ok", "templates"],
        ["ok", "smtp"],
        ["ok", "store"],
    ]
    assert "login accepted, nothing sent" in result.stdout
    assert lines[-1] == "all checks passed"
    assert auth_smtp.handler.messages == []


def test_check_reports_bad_auth_and_exits_1(tmp_path: Path, auth_smtp: SmtpServer) -> None:
    config = _smtp_auth_config(tmp_path, auth_smtp)
    result = run_cli(config, "check", now=NOW, check=False, env={"TEST_SMTP_PASSWORD": "wrong"})
    assert result.returncode == 1
    [smtp_line] = [line for line in result.stdout.splitlines() if " smtp " in line]
    assert smtp_line.startswith("FAIL") and "authentication failed: 535" in smtp_line
    assert "ok    store" in result.stdout  # the other checks still ran
    assert result.stdout.splitlines()[-1] == "1 check(s) failed"


def test_check_reports_unreachable_relay_broken_template_and_bad_config(tmp_path: Path) -> None:
    dead = SmtpServer("127.0.0.1", free_port(), RecordingHandler())
    templates = tmp_path / "my-templates"
    templates.mkdir()
    (templates / "digest.html.j2").write_text(
        "{% for a in articles %}<p>{{ a.title }</p>", encoding="utf-8"
    )
    config = write_config(tmp_path, transport="smtp", smtp=dead)
    text = config.read_text().replace(
        'postal_address = "1 Example Street, Springfield"',
        'postal_address = "1 Example Street, Springfield"\ntemplates_dir = "my-templates"',
    )
    config.write_text(text, encoding="utf-8")
    run_cli(config, "db", "upgrade")
    result = run_cli(config, "check", now=NOW, check=False)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  templates" in out and "FAIL  smtp" in out and "cannot connect" in out
    assert "ok    config" in out and "ok    store" in out

    config.write_text(text.replace("[delivery]", "[delivery]\nrate_limt = 1"), encoding="utf-8")
    result = run_cli(config, "check", now=NOW, check=False)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("FAIL  config")
    assert "did you mean 'rate_limit'" in result.stdout
    assert "skipped: the config does not load" in result.stdout


def test_status_json_issues_list_show_cancel_and_resend(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(tmp_path, transport="smtp", smtp=smtp_server)
    for address in ("ana@example.org", "bo@example.org", "cy@example.org"):
        run_cli(config, "subscribers", "add", address, now=NOW)
    smtp_server.handler.rcpt_replies["bo@example.org"] = "550 5.7.1 Rejected by policy"
    run_cli(config, "run", "--once", now=NOW)
    assert len(smtp_server.handler.messages) == 2

    status = json.loads(run_cli(config, "status", "--json", now=NOW).stdout)
    [daily] = status["digests"]
    assert daily["next_fire_time"] == "2026-11-29T07:00:00-05:00"
    assert daily["last_issue"]["counts"]["sent"] == 2
    assert daily["last_issue"]["counts"]["failed"] == 1
    assert status["retry_queue"] == 0 and status["failing_sources"] == []
    assert status["articles"] == 7

    [issue] = json.loads(run_cli(config, "issues", "list", "--json", now=NOW).stdout)
    assert issue["period"] == "2026-11-28" and issue["status"] == "sent"
    shown = run_cli(config, "issues", "show", str(issue["id"]), now=NOW).stdout
    assert "1 x 550 5.7.1 Rejected by policy" in shown
    assert "article   CRS/HIPEC Outcomes" in shown

    # The relay changed its mind: resend only the failed delivery.
    del smtp_server.handler.rcpt_replies["bo@example.org"]
    resent = run_cli(config, "issues", "resend", str(issue["id"]), "--failed", now=NOW)
    assert "requeued  1 failed" in resent.stdout and "1 sent, 0 failed" in resent.stdout
    assert [rcpts for _, rcpts, _ in smtp_server.handler.messages][-1] == ["bo@example.org"]
    assert len(smtp_server.handler.messages) == 3
    again = run_cli(config, "issues", "resend", str(issue["id"]), "--failed", now=NOW)
    assert "requeued  0 failed" in again.stdout
    assert len(smtp_server.handler.messages) == 3

    # A queued issue that is cancelled sends nothing, now or on a later run.
    run_cli(config, "subscribers", "add", "dee@example.org", now=NOW)
    later = "2026-11-29T15:00:00+00:00"
    (tmp_path / "content" / "late.md").write_text(
        '---\ntitle: "Late News"\ndate: 2026-11-29T10:00:00Z\n---\nBody.\n', encoding="utf-8"
    )
    run_cli(config, "collect", now=later)
    run_cli(config, "send", "daily", "--queue-only", now=later)
    [queued] = [
        i
        for i in json.loads(run_cli(config, "issues", "list", "--json").stdout)
        if i["period"] == "2026-11-29"
    ]
    assert queued["counts"]["queued"] == 4
    cancelled = run_cli(config, "issues", "cancel", str(queued["id"]), now=later)
    assert "4 queued delivery(ies) skipped" in cancelled.stdout
    run_cli(config, "run", "--once", now=later)
    assert len(smtp_server.handler.messages) == 3
    [after] = [
        i
        for i in json.loads(run_cli(config, "issues", "list", "--json").stdout)
        if i["id"] == queued["id"]
    ]
    assert after["status"] == "cancelled" and after["counts"]["skipped"] == 4

    missing = run_cli(config, "issues", "cancel", "999", check=False)
    assert missing.returncode == 1 and "no issue #999" in missing.stderr


@pytest.mark.parametrize(
    "command",
    [["run"], ["status"], ["check"], ["issues"], ["issues", "list"], ["issues", "show"],
     ["issues", "cancel"], ["issues", "resend"], ["subscribers", "add"]],
)  # fmt: skip
def test_every_toolbox_command_has_help(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path)
    result = run_cli(config, *command, "--help")
    assert "Usage:" in result.stdout
    assert len(result.stdout.split("\n\n")[1].strip()) > 20  # a real description


def test_collect_every_option_rejects_a_bad_duration(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(config, "run", "--collect-every", "soon", check=False)
    assert result.returncode == 1
    assert "--collect-every: 'soon' is not a duration" in result.stderr
