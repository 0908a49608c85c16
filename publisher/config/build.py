"""Parsed TOML -> :class:`Config`: section tables into dataclasses, unknown keys refused (pure).

No I/O: :func:`parse` takes what ``tomllib`` returned (and the text, to find line numbers).
Each key is checked against its field's type hint and converted; relative paths are
resolved against the config file's directory; a misspelt key gets a "did you mean" hint.
Then :func:`publisher.config.validate.validate` runs, and ``[delivery] from`` is split into
the sender's address and name.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

from publisher.config.hooks import HooksConfig
from publisher.config.locate import KeyPath, Locator, unknown_key, where
from publisher.config.sections import (
    AdminConfig,
    ApiConfig,
    BouncesConfig,
    Config,
    DeliveryConfig,
    DigestConfig,
    DomainLimit,
    FeedsConfig,
    RelayConfig,
    ScheduleConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    StoreConfig,
    WebConfig,
    WebhookConfig,
)
from publisher.config.validate import validate
from publisher.config.values import split_sender
from publisher.errors import ConfigError

_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "sources": SourceConfig,
    "feeds": FeedsConfig,
    "digests": DigestConfig,
    "delivery": DeliveryConfig,
    "smtp": SmtpConfig,
    "web": WebConfig,
    "schedule": ScheduleConfig,
    "bounces": BouncesConfig,
    "relays": RelayConfig,
    "api": ApiConfig,
    "webhooks": WebhookConfig,
    "admin": AdminConfig,
    "hooks": HooksConfig,
}
_ARRAYS = {"sources", "digests", "relays", "webhooks"}
_RESERVED = {"from_": "from"}
_DERIVED = {"from_name"}  # computed at load time, never read from the file
_DOMAIN = re.compile(r"^(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)$")


def parse(data: dict[str, Any], path: Path, text: str = "") -> Config:
    """Build a Config from parsed TOML ``data`` that came from ``path``."""
    locator = Locator(text)
    kwargs: dict[str, Any] = {}
    if "site" not in data:
        raise ConfigError(f"{path.name}: missing required table [site]")
    for key, value in data.items():
        if key not in _SECTIONS:
            raise ConfigError(f"{where(path, locator, (key,))}: {unknown_key(key, _SECTIONS)}")
        cls = _SECTIONS[key]
        if key in _ARRAYS:
            if not isinstance(value, list):
                raise ConfigError(f"{where(path, locator, (key,))}: write it as [[{key}]] tables")
            kwargs[key] = tuple(
                _build(cls, item, (key, i), path, locator) for i, item in enumerate(value)
            )
        elif key == "delivery" and isinstance(value, dict) and "domains" in value:
            rest = {k: v for k, v in value.items() if k != "domains"}
            kwargs[key] = dataclasses.replace(
                _build(cls, rest, (key,), path, locator),
                domains=domain_limits(value["domains"], path, locator),
            )
        else:
            kwargs[key] = _build(cls, value, (key,), path, locator)
    if "smtp" in data and "relays" in data:
        raise ConfigError(
            f"{where(path, locator, ('smtp',))}: [smtp] and [[relays]] cannot both be set; "
            "move [smtp] host, port, security, username, password_env into a [[relays]] entry"
        )
    for key, cls in _SECTIONS.items():
        if key not in kwargs and key not in _ARRAYS and key != "site":
            kwargs[key] = _build(cls, {}, (key,), path, locator)
    config = Config(path=path, **kwargs)
    validate(config, path, locator)
    return _with_sender(config, where(path, locator, ("delivery", "from")))


def _with_sender(config: Config, at: str) -> Config:
    """Split ``[delivery] from`` into address and name; the name defaults to ``[site] title``."""
    name, address = split_sender(config.delivery.from_, at)
    delivery = dataclasses.replace(
        config.delivery, from_=address, from_name=name.strip() or config.site.title
    )
    return dataclasses.replace(config, delivery=delivery)


def domain_limits(table: Any, file: Path, locator: Locator) -> tuple[DomainLimit, ...]:
    """[delivery.domains]: ``"gmail.com" = { rate = 20, connections = 2 }`` entries."""
    at = lambda *p: where(file, locator, ("delivery.domains", *p))  # noqa: E731
    if not isinstance(table, dict):
        raise ConfigError(f"{at()}: expected a table of domains, got {table!r}")
    limits = []
    for domain, value in table.items():
        if not _DOMAIN.match(domain):
            raise ConfigError(f'{at(domain)}: {domain!r} is not a lowercase domain name or "*"')
        if not isinstance(value, dict):
            raise ConfigError(
                f"{at(domain)}: expected {{ rate = N, connections = N }}, got {value!r}"
            )
        limit = _build(DomainLimit, {**value, "domain": domain}, ("delivery.domains", domain),
                       file, locator)  # fmt: skip
        if "domain" in value:
            raise ConfigError(f"{at(domain)}: {unknown_key('domain', ('rate', 'connections'))}")
        if limit.rate < 0 or limit.connections < 0 or not (limit.rate or limit.connections):
            raise ConfigError(
                f"{at(domain)}: set rate (messages/s) and/or connections to more than 0"
            )
        limits.append(limit)
    return tuple(limits)


def _build(cls: type, table: Any, path: KeyPath, file: Path, locator: Locator) -> Any:
    """One table -> an instance of ``cls``: known keys only, each converted, defaults filled."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where(file, locator, path)}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = {
        _RESERVED.get(f.name, f.name): f for f in dataclasses.fields(cls) if f.name not in _DERIVED
    }
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(f"{where(file, locator, (*path, key))}: {unknown_key(key, names)}")
        f = names[key]
        nested = _table_type(hints[f.name])
        if nested is not None:
            # A sub-table such as [delivery.dkim]: its own header, its own key paths.
            kwargs[f.name] = _build(nested, value, (f"{path[0]}.{key}", *path[1:]), file, locator)
            continue
        kwargs[f.name] = _convert(
            value, hints[f.name], where(file, locator, (*path, key)), file.parent
        )
    for key, f in names.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and f.name not in kwargs:
            raise ConfigError(f"{where(file, locator, path)}: missing required key {key!r}")
        if f.name not in kwargs and isinstance(f.default, Path) and not f.default.is_absolute():
            # Default folders live next to the config file too, not in the working directory.
            kwargs[f.name] = (file.parent / f.default).resolve()
    return cls(**kwargs)


def _table_type(hint: Any) -> type | None:
    """The dataclass a setting holds when it is a sub-table (``X`` or ``X | None``)."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    cls = options[0]
    return cls if isinstance(cls, type) and dataclasses.is_dataclass(cls) else None


def _convert(value: Any, hint: Any, at: str, base: Path) -> Any:
    """Check ``value`` against the field's type hint and convert it."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, options[0], at, base)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{at}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{at}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{at}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{at}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{at}: expected a path string, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{at}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{at}: unsupported setting type {hint!r}")  # pragma: no cover
