"""Console logins through the service on a real SQLite store, with the clock pinned
(``PUBLISHER_NOW``) and moved: sessions end after ``[admin] session_hours``, the second
factor's stage after minutes, failed logins are refused at the limit until the window
passes, and a logout ends the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher import config
from publisher.app import open_app
from publisher.services import operators, sessions
from publisher.services.audit import Actor
from tests.conftest import write_config

PASSWORD = "correct horse battery"


def test_sessions_expire_and_the_limits_hold_until_the_window_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, extra="\n[admin]\nsession_hours = 2\nlogin_per_address = 2\n")
    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-02T09:00:00+00:00")
    app = open_app(config.load(path))
    operators.add_operator(app, "ada@example.org", "admin", PASSWORD, actor=Actor("cli:test"))

    login = sessions.password_login(app, "ADA@example.org", PASSWORD, "192.0.2.1")
    assert not login.needs_second_factor
    assert sessions.session_operator(app, login.token)[1].email == "ada@example.org"  # type: ignore[index]
    assert sessions.session_operator(app, login.token + "x") is None
    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-02T10:59:00+00:00")
    assert sessions.session_operator(app, login.token) is not None
    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-02T11:00:00+00:00")
    assert sessions.session_operator(app, login.token) is None  # session_hours = 2

    for _ in range(2):
        with pytest.raises(sessions.LoginRefused) as wrong:
            sessions.password_login(app, "ada@example.org", "wrong", "192.0.2.1")
        assert wrong.value.retry_after == 0
    with pytest.raises(sessions.LoginRefused) as limited:
        sessions.password_login(app, "ada@example.org", PASSWORD, "192.0.2.2")
    assert limited.value.retry_after == 15 * 60
    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-02T11:16:00+00:00")  # the window passed
    again = sessions.password_login(app, "ada@example.org", PASSWORD, "192.0.2.2")

    sessions.logout(app, again.token, actor=Actor("ada@example.org", "192.0.2.2"))
    assert sessions.session_operator(app, again.token) is None
    actions = [e.action for e in app.store.audit_entries(10)]
    assert actions[:4] == ["operator.logout", "operator.login", "operator.login_failed",
                           "operator.login_failed"]  # fmt: skip
    app.store.close()


def test_the_second_factor_stage_is_short_and_not_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyotp

    from publisher.services import twofactor

    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-02T09:00:00+00:00")
    app = open_app(config.load(write_config(tmp_path)))
    operators.add_operator(app, "ada@example.org", "admin", PASSWORD, actor=Actor("cli:test"))
    secret = twofactor.new_secret()
    ada = operators.get_operator(app, "ada@example.org")
    twofactor.enrol(app, ada, secret, pyotp.TOTP(secret).at(app.clock()), actor=Actor("x"))

    login = sessions.password_login(app, "ada@example.org", PASSWORD, "192.0.2.1")
    assert login.needs_second_factor
    session, _ = sessions.session_operator(app, login.token)  # type: ignore[misc]
    assert session.stage == sessions.PENDING  # the console's require() refuses this stage
    monkeypatch.setenv("PUBLISHER_NOW", "2026-12-02T09:05:00+00:00")
    with pytest.raises(sessions.LoginRefused, match="expired"):
        sessions.second_factor_login(
            app, login.token, pyotp.TOTP(secret).at(app.clock()), "192.0.2.1"
        )
    login = sessions.password_login(app, "ada@example.org", PASSWORD, "192.0.2.1")
    sessions.second_factor_login(app, login.token, pyotp.TOTP(secret).at(app.clock()), "192.0.2.1")
    session, _ = sessions.session_operator(app, login.token)  # type: ignore[misc]
    assert session.stage == sessions.FULL
    assert session.expires_at.isoformat() == "2026-12-02T21:05:00+00:00"  # 12 h by default
    app.store.close()
