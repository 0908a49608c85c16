"""``[admin]``: its defaults, its checks (one line naming file, line and key), and
``enabled = false`` taking every ``/admin/`` route away from ``publisher serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher import admin, config
from publisher.errors import ConfigError
from publisher.server import create_server
from tests.test_config import MINIMAL, line_of, load_error, write_toml


def test_defaults() -> None:
    settings = config.AdminConfig()
    assert (settings.enabled, settings.session_hours, settings.max_upload_mb) == (True, 12, 50)
    assert (settings.login_window, settings.login_per_address, settings.login_per_ip) == (
        "15m", 5, 20,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("session_hours = 0", "admin.session_hours: must be 1 to 720 hours"),
        ("max_upload_mb = 20000", "admin.max_upload_mb: must be 1 to 10240 MB"),
        ('login_window = "soon"', "admin.login_window"),
        ("login_per_ip = 0", "admin.login_per_ip: must be at least 1"),
        ("enabled = 1", "admin.enabled: expected true or false"),
        ("sessions = 3", "admin.sessions"),
    ],
)
def test_bad_values_name_the_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    text = MINIMAL + f"\n[admin]\n{line}\n"
    error = load_error(tmp_path, text)
    assert error.startswith(f"config.toml:{line_of(text, line.split(' =')[0] + ' =')}: ")
    assert message in error


def test_disabled_console_has_no_routes(tmp_path: Path) -> None:
    on = config.load(write_toml(tmp_path, MINIMAL))
    off = config.load(write_toml(tmp_path, MINIMAL + "\n[admin]\nenabled = false\n", "off.toml"))
    paths = lambda c: {getattr(r, "path", "") for r in create_server(c).routes}  # noqa: E731
    assert "/admin/login" in paths(on) and "/admin/" in paths(on)
    assert admin.routes(off) == []
    assert not [p for p in paths(off) if p.startswith("/admin")]
    with pytest.raises(ConfigError):
        config.load(write_toml(tmp_path, MINIMAL + "\n[admin]\nlogin_per_address = -1\n"))


def test_https_base_url_makes_the_session_cookie_secure_and_next_stays_home(
    tmp_path: Path,
) -> None:
    import asyncio

    import httpx

    from publisher.app import open_app
    from publisher.services import operators
    from publisher.services.audit import Actor
    from publisher.services.sessions import token_hash
    from tests.conftest import write_config

    path = write_config(tmp_path)  # [web] base_url = "https://news.example.org/mail"
    settings = config.load(path)
    app = open_app(settings)
    operators.add_operator(app, "ada@example.org", "admin", "correct horse battery",
                           actor=Actor("cli:test"))  # fmt: skip

    async def log_in() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_server(settings, app=app))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            page = await client.get("/admin/login")
            csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
            return await client.post("/admin/login", data={
                "csrf": csrf, "email": "ada@example.org", "password": "correct horse battery",
                "next": "https://evil.example.org/admin/"})  # fmt: skip

    response = asyncio.run(log_in())
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/"  # never another site
    cookie = response.headers["set-cookie"]
    assert "publisher_admin=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower() and "Path=/admin/" in cookie
    token = cookie.split("publisher_admin=")[1].split(";")[0]
    assert app.store.console_session(token, app.clock()) is None  # the id is not stored
    assert app.store.console_session(token_hash(token), app.clock()) is not None
    app.store.close()
