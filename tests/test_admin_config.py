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
