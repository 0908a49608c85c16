"""`publisher operators` and `publisher tokens` as an operator runs them: real CLI
subprocesses (and a real pseudo-terminal for the hidden prompt), real SQLite files and the
local PostgreSQL; the services the console and the API will call, read back from the store."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher import config as config_module
from publisher.app import App, open_app
from publisher.errors import OperatorError
from publisher.models import ROLES, SCOPES, role_allows, scope_allows
from publisher.services import operators as operator_service
from publisher.services import tokens as token_service
from publisher.services.audit import Actor
from tests.conftest import REPO, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
T0 = datetime(2026, 11, 28, 15, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r"^pub_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


def _cli(config: Path, *args: str, check: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
    return run_cli(config, *args, now=NOW, check=check, input=input)


def _app(config: Path, now: datetime = T0) -> App:
    return open_app(config_module.load(config), clock=lambda: now)


def _audit(config: Path) -> list[tuple[str, str, str, str]]:
    app = _app(config)
    try:
        entries = app.store.audit_entries()
    finally:
        app.store.close()
    return [(e.actor.split(":")[0], e.action, e.target, e.detail) for e in reversed(entries)]


# -- operators ----------------------------------------------------------------------------


def test_add_list_passwd_remove_with_password_stdin(tmp_path: Path, store_url: str) -> None:
    config = write_config(tmp_path, store_url=store_url)
    out = _cli(config, "operators", "add", "Ada@Example.org", "--role", "admin",
               "--password-stdin", input=PASSWORD + "\n").stdout  # fmt: skip
    assert out == "added operator ada@example.org (admin)\n"
    _cli(config, "operators", "add", "bo@example.org", "--role", "viewer", "--password-stdin",
         input="another long passphrase")  # fmt: skip
    listed = _cli(config, "operators", "list").stdout
    assert re.search(
        r"ada@example\.org\s+│\s+admin\s+│\s+no\s+│\s+2026-11-28 15:00\s+│\s+never", listed
    )
    assert "bo@example.org" in listed and "viewer" in listed

    again = _cli(config, "operators", "add", "ada@example.org", "--role", "editor",
                 "--password-stdin", input=PASSWORD, check=False)  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "Error: ada@example.org is already an operator (`operators passwd` changes the password)"
    )

    app = _app(config)
    assert app.store.operator("ada@example.org").role == "admin"  # type: ignore[union-attr]
    assert operator_service.verify_password(app, "ADA@example.org", PASSWORD) is not None
    assert operator_service.verify_password(app, "ada@example.org", PASSWORD + "x") is None
    assert operator_service.verify_password(app, "nobody@example.org", PASSWORD) is None
    assert operator_service.verify_password(app, "not an address", PASSWORD) is None
    assert operator_service.verify_password(app, "ada@example.org", "x" * 10**6) is None
    app.store.close()

    new = "a different passphrase entirely"
    out = _cli(
        config, "operators", "passwd", "ada@example.org", "--password-stdin", input=new
    ).stdout
    assert out == "password changed for ada@example.org\n"
    app = _app(config)
    assert operator_service.verify_password(app, "ada@example.org", PASSWORD) is None
    assert operator_service.verify_password(app, "ada@example.org", new) is not None
    app.store.close()

    assert (
        _cli(config, "operators", "remove", "bo@example.org").stdout
        == "removed operator bo@example.org\n"
    )
    gone = _cli(config, "operators", "remove", "bo@example.org", check=False)
    assert gone.returncode == 1 and "no operator bo@example.org" in gone.stderr
    assert "bo@example.org" not in _cli(config, "operators", "list").stdout

    assert _audit(config) == [
        ("cli", "operator.add", "ada@example.org", "role=admin"),
        ("cli", "operator.add", "bo@example.org", "role=viewer"),
        ("cli", "operator.passwd", "ada@example.org", ""),
        ("cli", "operator.remove", "bo@example.org", ""),
    ]


def test_the_last_admin_is_not_removed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _cli(config, "operators", "add", "ada@example.org", "--role", "admin",
         "--password-stdin", input=PASSWORD)  # fmt: skip
    refused = _cli(config, "operators", "remove", "ada@example.org", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: ada@example.org is the last admin: not removed (add another admin first)"
    )
    _cli(config, "operators", "add", "bo@example.org", "--role", "admin",
         "--password-stdin", input="another long passphrase")  # fmt: skip
    _cli(config, "operators", "remove", "ada@example.org")
    assert "ada@example.org" not in _cli(config, "operators", "list").stdout
    again = _cli(config, "operators", "remove", "bo@example.org", check=False)
    assert again.returncode == 1 and "last admin" in again.stderr
    assert [a for _, a, t, _ in _audit(config) if a == "operator.remove"] == ["operator.remove"]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "the password is empty"),
        ("   \t ", "the password is empty"),
        ("short one", "the password is too short: 9 characters, at least 12"),
        ("x" * 1025, "the password is too long: at most 1024 characters"),
        ("abababababababab", "the password is too weak: use at least 4 different characters"),
        ("my OPS@example.org pw", "the password must not contain the operator's address"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, message: str) -> None:
    with pytest.raises(OperatorError) as caught:
        operator_service.check_password(password, "ops@example.org")
    assert str(caught.value) == message
    operator_service.check_password(PASSWORD, "ops@example.org")


def test_add_refuses_a_weak_password_a_bad_address_and_an_unknown_role(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cases = [
        (["ops@example.org", "--role", "admin"], "short one\n", 1,
         "Error: the password is too short: 9 characters, at least 12"),
        (["not-an-address", "--role", "admin"], PASSWORD, 1, "Error: invalid address 'not-an-address'"),
        (["ops@example.org", "--role", "root"], PASSWORD, 2,
         "Invalid value for '--role': 'root' is not one of 'viewer', 'editor', 'admin'"),
    ]  # fmt: skip
    for args, password, code, message in cases:
        result = _cli(
            config, "operators", "add", *args, "--password-stdin", input=password, check=False
        )
        assert result.returncode == code, result.stderr
        assert message in result.stderr
        assert result.stdout == ""
        if code == 1:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    app = _app(config)
    assert app.store.list_operators() == [] and app.store.audit_entries() == []
    app.store.close()


def test_without_a_terminal_the_password_must_come_from_stdin(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = _cli(config, "operators", "add", "ops@example.org", "--role", "admin",
                  input="", check=False)  # fmt: skip
    assert result.returncode == 2
    assert "no terminal to type the password at: pipe it in with --password-stdin" in result.stderr


def _run_in_pty(config: Path, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the CLI on a real pseudo-terminal, typing each answer when a prompt ends in ': '."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty, as in a real shell
        os.chdir(config.parent)
        os.environ.update(PUBLISHER_NOW=NOW, PUBLISHER_TEST_SECRET="test-secret")
        os.execv(
            sys.executable, [sys.executable, "-m", "publisher", "--config", str(config), *args]
        )
    output, pending = b"", list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if pending and output.rstrip(b" ").endswith(b":"):
            os.write(fd, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_the_prompt_hides_the_password_and_asks_twice(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    secret = "typed at a hidden prompt"
    code, screen = _run_in_pty(
        config,
        ["operators", "add", "ops@example.org", "--role", "editor"],
        [secret, "a typo in the repeat", secret, secret],
    )
    assert code == 0, screen
    assert screen.count("Password:") == 2 and screen.count("Repeat the password:") == 2
    assert "The two entered values do not match" in screen
    assert "added operator ops@example.org (editor)" in screen
    assert secret not in screen  # never echoed
    app = _app(config)
    assert operator_service.verify_password(app, "ops@example.org", secret) is not None
    app.store.close()


def test_reset_2fa_clears_the_secret_and_the_recovery_codes(tmp_path: Path, store_url: str) -> None:
    config = write_config(tmp_path, store_url=store_url)
    _cli(config, "operators", "add", "ops@example.org", "--role", "admin", "--password-stdin",
         input=PASSWORD)  # fmt: skip
    out = _cli(config, "operators", "reset-2fa", "ops@example.org").stdout
    assert out == "ops@example.org had no second factor; nothing to reset\n"
    app = _app(config)
    # The console's enrolment writes these; here the store stands in for it.
    app.store.update_operator("ops@example.org", None, totp_secret="JBSWY3DPEHPK3PXP",
                              recovery_codes='["h1", "h2"]')  # fmt: skip
    assert app.store.operator("ops@example.org").two_factor  # type: ignore[union-attr]
    app.store.close()
    out = _cli(config, "operators", "reset-2fa", "OPS@example.org").stdout
    assert out == "2fa reset for ops@example.org: they enrol again at their next login\n"
    app = _app(config)
    operator = app.store.operator("ops@example.org")
    assert operator is not None and operator.totp_secret is None and operator.recovery_codes is None
    assert "JBSWY3DP" not in repr(operator)
    app.store.close()
    missing = _cli(config, "operators", "reset-2fa", "who@example.org", check=False)
    assert missing.returncode == 1 and "no operator who@example.org" in missing.stderr
    assert [a[1:] for a in _audit(config)][-2:] == [
        ("operator.reset_2fa", "ops@example.org", "had no 2FA"),
        ("operator.reset_2fa", "ops@example.org", "had 2FA"),
    ]


def test_login_is_recorded_with_the_address_it_came_from(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    app = _app(config)
    actor = Actor("cli:test")
    operator = operator_service.add_operator(
        app, "ops@example.org", "viewer", PASSWORD, actor=actor
    )
    operator_service.record_login(app, operator, actor=Actor("ops@example.org", ip="192.0.2.7"))
    assert app.store.operator("ops@example.org").last_login_at == T0  # type: ignore[union-attr]
    [login, added] = app.store.audit_entries()
    assert (login.actor, login.action, login.ip, login.at) == (
        "ops@example.org",
        "operator.login",
        "192.0.2.7",
        T0,
    )
    assert (added.actor, added.ip) == ("cli:test", None)
    app.store.close()


# -- tokens -------------------------------------------------------------------------------


def test_token_is_printed_once_and_authenticates_until_revoked(
    tmp_path: Path, store_url: str
) -> None:
    config = write_config(tmp_path, store_url=store_url)
    created = _cli(config, "tokens", "create", "ci", "--scope", "write")
    raw = created.stdout.strip()
    assert TOKEN.match(raw), created.stdout
    assert (
        created.stdout == raw + "\n"
    )  # only the token on stdout: TOKEN=$(publisher tokens create ...)
    assert "created token ci (write, never expires); it is shown only this once" in created.stderr

    listed = _cli(config, "tokens", "list").stdout
    assert raw not in listed and raw.split("_", 2)[2] not in listed
    assert re.search(
        rf"ci\s+│\s+{raw[:17]}\s+│\s+write\s+│\s+active\s+│\s+2026-11-28 15:00\s+│\s+never\s+│\s+never",
        listed,
    ), listed

    later = T0 + timedelta(hours=2)
    app = _app(config, later)
    token = token_service.authenticate_token(app, raw)
    assert token is not None and (token.name, token.scope) == ("ci", "write")
    assert app.store.api_token("ci").last_used_at == later  # type: ignore[union-attr]
    tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert token_service.authenticate_token(app, tampered) is None
    assert token_service.authenticate_token(app, raw.replace("pub_", "pub-")) is None
    assert token_service.authenticate_token(app, "") is None
    assert token_service.authenticate_token(app, f"  {raw}\n") is not None  # header whitespace
    app.store.close()
    assert "2026-11-28 17:00" in _cli(config, "tokens", "list").stdout  # last used

    dup = _cli(config, "tokens", "create", "ci", "--scope", "read", check=False)
    assert dup.returncode == 1 and "a token named 'ci' exists already" in dup.stderr
    assert dup.stdout == ""

    assert _cli(config, "tokens", "revoke", "ci").stdout == "revoked token ci (write)\n"
    app = _app(config, later)
    assert token_service.authenticate_token(app, raw) is None
    app.store.close()
    assert re.search(r"ci\s+│.*│\s+revoked\s+│", _cli(config, "tokens", "list").stdout)
    again = _cli(config, "tokens", "revoke", "ci", check=False)
    assert again.returncode == 1 and "was revoked already" in again.stderr
    missing = _cli(config, "tokens", "revoke", "nope", check=False)
    assert missing.returncode == 1 and "no token named 'nope'" in missing.stderr

    audit = _audit(config)
    assert [a[1:3] for a in audit] == [("token.create", "ci"), ("token.revoke", "ci")]
    assert audit[0][3] == f"scope=write prefix={raw[4:16]} expires=never"


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    created = _cli(config, "tokens", "create", "short-lived", "--scope", "read", "--expires", "1d")
    assert "expires 2026-11-29 15:00 UTC" in created.stderr
    raw = created.stdout.strip()
    app = _app(config, T0 + timedelta(hours=23))
    assert token_service.authenticate_token(app, raw) is not None
    app.store.close()
    app = _app(config, T0 + timedelta(days=1))
    assert token_service.authenticate_token(app, raw) is None
    assert app.store.api_token("short-lived").state(app.clock()) == "expired"  # type: ignore[union-attr]
    app.store.close()
    listed = run_cli(config, "tokens", "list", now="2026-11-30T00:00:00+00:00").stdout
    assert re.search(
        r"short-lived\s+│.*│\s+expired\s+│\s+2026-11-28 15:00\s+│\s+2026-11-29 15:00", listed
    )


def test_create_refuses_bad_scopes_lifetimes_and_names(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = _cli(config, "tokens", "create", "ci", "--scope", "admin", check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert (
        "Invalid value for '--scope': 'admin' is not one of 'read', 'write', 'send'"
        in result.stderr
    )
    result = _cli(
        config, "tokens", "create", "ci", "--scope", "read", "--expires", "soon", check=False
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "--expires: 'soon' is not a duration" in result.stderr
    app = _app(config)
    for value, message in [("0", "must live longer than 0"), ("-1d", "is not a duration")]:
        with pytest.raises(OperatorError, match=message):
            token_service.parse_expiry(value)
    assert token_service.parse_expiry("never") is None and token_service.parse_expiry(None) is None
    assert token_service.parse_expiry("2w") == timedelta(days=14)
    for name in ("has space", "", "-leading", "x" * 101, "new\nline"):
        with pytest.raises(OperatorError, match="invalid token name"):
            token_service.create_token(app, name, "read", None, actor=Actor("cli:test"))
    with pytest.raises(OperatorError, match="unknown scope 'admin'"):
        token_service.create_token(app, "ci", "admin", None, actor=Actor("cli:test"))
    assert app.store.list_api_tokens() == []
    app.store.close()


def test_the_database_holds_no_password_and_no_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _cli(config, "operators", "add", "ops@example.org", "--role", "admin", "--password-stdin",
         input=PASSWORD)  # fmt: skip
    raw = _cli(config, "tokens", "create", "ci", "--scope", "send").stdout.strip()
    # The secret is what follows pub_<12 hex>_; it may itself hold "_" (URL-safe base64), so
    # splitting at the last "_" once gave a 2-character tail that occurred in the file by chance.
    secret = raw.split("_", 2)[2]
    assert len(secret) == 43
    files = [p for p in tmp_path.glob("publisher.db*") if p.is_file()]
    data = b"".join(p.read_bytes() for p in files)
    assert (
        b"ops@example.org" in data and token_service.token_hash(raw).encode() in data
    )  # the grep works
    for plain in (PASSWORD, raw, secret, secret[:20]):
        assert plain.encode() not in data, plain
    assert b"$argon2id$" in data


def test_scopes_and_roles_are_ordered() -> None:
    assert SCOPES == ("read", "write", "send") and ROLES == ("viewer", "editor", "admin")
    assert scope_allows("send", "write") and scope_allows("write", "read")
    assert not scope_allows("read", "write") and not scope_allows("write", "send")
    assert not scope_allows("bogus", "read")
    assert role_allows("admin", "editor") and not role_allows("viewer", "editor")


def test_help_texts_say_what_each_command_does() -> None:
    import subprocess

    def helptext(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "publisher", *args, "--help"],
                              capture_output=True, text=True, cwd=REPO, check=True).stdout  # fmt: skip

    assert "at least 12 characters" in helptext("operators", "add")
    assert "--password-stdin" in helptext("operators", "passwd")
    assert "enrol a new one at their next login" in helptext("operators", "reset-2fa")
    assert "Only a hash of the token is stored" in helptext("tokens", "create")


def test_audit_log_pages_newest_first_filters_and_purges(store_url: str) -> None:
    from publisher.models import AuditEntry
    from publisher.store import Store

    store = Store.open(store_url)
    for i in range(5):
        store.record_audit(AuditEntry(at=T0 + timedelta(days=i), actor=f"cli:u{i % 2}",
                                      action="token.create", target=f"t{i}", ip="x" * 60))  # fmt: skip
    first = store.audit_entries(2)
    assert [e.target for e in first] == ["t4", "t3"]
    assert len(first[0].ip or "") == 45  # bounded
    rest = store.audit_entries(10, before_id=first[-1].id)
    assert [e.target for e in rest] == ["t2", "t1", "t0"]
    assert [e.target for e in store.audit_entries(actor="cli:u1")] == ["t3", "t1"]
    assert store.purge_audit(T0 + timedelta(days=3)) == 3
    assert [e.target for e in store.audit_entries()] == ["t4", "t3"]
    store.close()
