"""The config package's I/O: which file to read, reading it, and secrets from the environment.

:func:`load` reads one file and hands the TOML to :func:`publisher.config.build.parse`;
:func:`default_path` and :func:`secret_from_env` read environment variables. Secrets are
never in the file: ``password_env`` and ``secret_env`` name the variables that hold them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from publisher.config.build import parse
from publisher.config.sections import Config
from publisher.errors import ConfigError

CONFIG_ENV = "PUBLISHER_CONFIG"


def default_path() -> Path:
    """The config file to use when ``--config`` is not given."""
    return Path(os.environ.get(CONFIG_ENV) or "config.toml")


def load(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError naming the file, line and key."""
    path = path.expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: config file not found", hint=f"pass --config or set ${CONFIG_ENV}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from exc
    return parse(data, path, text)


def secret_from_env(env_name: str, *, what: str) -> str | None:
    """Return the secret held by environment variable ``env_name`` (None when unset)."""
    if not env_name:
        return None
    return os.environ.get(env_name) or None
