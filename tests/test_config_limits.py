"""[[relays]], [delivery.domains] and the relay keys of [delivery]: parsing and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher import config
from publisher.errors import ConfigError

SHIPPED = Path(__file__).resolve().parent.parent / "config.toml"
SITE = '[site]\ntitle = "T"\nurl = "https://example.org"\n'


def load_text(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_commented_examples_in_the_shipped_config_load(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    # Uncomment the [delivery.domains] and [[relays]] examples and drop [smtp], as told.
    start = text.index("\n[smtp]") + 1
    end = text.index("\n\n", text.index("max_messages_per_connection"))
    text = text[:start] + text[end:]
    first = text.index("# [delivery.domains]")
    last = text.index("\n\n", text.index("# [[relays]]"))
    examples = re.sub(r"(?m)^# ?(?=[\[\"a-z]|$)", "", text[first:last])
    text = text[:first] + examples + text[last:]
    text = text.replace("content", str(SHIPPED.parent / "content"))
    cfg = load_text(tmp_path, text)
    assert [r.label for r in cfg.relay_list] == ["primary", "backup"]
    assert cfg.relay_list[0].rate == 50 and cfg.relay_list[1].port == 587
    assert cfg.delivery.domain_limit("gmail.com") == config.DomainLimit("gmail.com", 20, 2)
    assert cfg.delivery.domain_limit("example.net") == config.DomainLimit("*", 5, 0)
    assert (cfg.delivery.relay_failures, cfg.delivery.relay_recheck) == (3, 30)


def test_a_lone_smtp_table_is_one_relay(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, SITE + '[smtp]\nhost = "mx.example.org"\nport = 2525\n')
    [relay] = cfg.relay_list
    assert (relay.label, relay.rate, relay.priority) == ("mx.example.org:2525", 0, 0)
    assert cfg.delivery.domain_limit("gmail.com") is None


def test_relays_are_tried_by_priority(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        SITE + '[[relays]]\nhost = "b"\npriority = 5\n[[relays]]\nhost = "a"\npriority = 1\n',
    )
    assert [r.host for r in cfg.relay_list] == ["a", "b"]


def test_smtp_and_relays_together_is_one_clear_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, SITE + '[smtp]\nhost = "x"\n[[relays]]\nhost = "y"\n')
    assert message.startswith("config.toml:4: smtp: [smtp] and [[relays]] cannot both be set")
    assert "host, port, security, username, password_env" in message


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[[relays]]\nhost = "a"\nprio = 1\n', "config.toml:6: relays[0].prio: unknown key 'prio' (did you mean 'priority'?)"),
        ('[[relays]]\nhost = "a"\nsecurity = "ssl"\n', "config.toml:6: relays[0].security: 'ssl' is not one of"),
        ('[[relays]]\nhost = "a"\nrate = -1\n', "config.toml:6: relays[0].rate: must be 0 (no limit) or more"),
        ('[[relays]]\nport = 25\n', "config.toml:4: relays[0]: missing required key 'host'"),
        ('[[relays]]\nhost = "a"\n[[relays]]\nhost = "a"\n', "duplicate relay 'a:587' (set 'name')"),
        ('[delivery]\nrelay_failures = 0\n', "config.toml:5: delivery.relay_failures: must be at least 1"),
        ('[delivery.domains]\n"gmail.com" = { rate = 20, conections = 2 }\n',
         "config.toml:5: delivery.domains.gmail.com.conections: unknown key 'conections' (did you mean 'connections'?)"),
        ('[delivery.domains]\n"Gmail.com" = { rate = 20 }\n', "is not a lowercase domain name"),
        ('[delivery.domains]\n"gmail.com" = 20\n', "expected { rate = N, connections = N }, got 20"),
        ('[delivery.domains]\n"gmail.com" = { rate = 0 }\n', "set rate (messages/s) and/or connections"),
        ('[delivery.domains]\n"gmail.com" = { rate = "fast" }\n', "expected a number, got 'fast'"),
    ],
)
def test_bad_relay_and_domain_settings_name_the_key(
    tmp_path: Path, table: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, SITE + table)
