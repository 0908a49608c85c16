"""The console's state in the store, on SQLite and PostgreSQL: sessions found by hash and
expiring, failed logins counted in a window, TOTP steps and recovery codes used once, and
the last admin kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.models import AuditEntry
from publisher.store import Store

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _audit(action: str) -> AuditEntry:
    return AuditEntry(at=T0, actor="cli:test", action=action, target="x", detail="", ip=None)


def test_sessions_by_hash_expire_promote_and_end(store_url: str) -> None:
    store = Store.open(store_url)
    store.add_operator("ada@example.org", "admin", "hash", T0, _audit("operator.add"))
    store.create_console_session(
        "h1", "ada@example.org", "2fa", T0, T0 + timedelta(minutes=5), "192.0.2.1"
    )
    session = store.console_session("h1", T0)
    assert session is not None and (session.stage, session.ip) == ("2fa", "192.0.2.1")
    assert store.console_session("h1", T0 + timedelta(minutes=5)) is None  # expired
    assert store.promote_console_session("h1", T0 + timedelta(hours=12))
    assert store.console_session("h1", T0 + timedelta(hours=1)).stage == "ok"  # type: ignore[union-attr]
    store.create_console_session("h2", "ada@example.org", "ok", T0, T0 + timedelta(hours=1), None)
    assert store.end_console_sessions("ada@example.org", keep="h2") == 1
    assert store.console_session("h1", T0) is None and store.console_session("h2", T0)
    store.end_console_session("h2")
    assert store.console_session("h2", T0) is None
    # A new session sweeps the expired ones away.
    store.create_console_session(
        "old", "ada@example.org", "ok", T0, T0 + timedelta(seconds=1), None
    )
    store.create_console_session("new", "ada@example.org", "ok", T0 + timedelta(hours=1),
                                 T0 + timedelta(hours=2), None)  # fmt: skip
    assert store.end_console_sessions("ada@example.org") == 1
    store.close()


def test_login_failures_count_within_the_window(store_url: str) -> None:
    store = Store.open(store_url)
    keys = ("ip:192.0.2.1", "address:abc")
    for minute in range(3):
        at = T0 + timedelta(minutes=minute)
        store.record_login_failure(keys, at, at - timedelta(minutes=15))
    assert store.login_failures(keys, T0 - timedelta(seconds=1)) == {keys[0]: 3, keys[1]: 3}
    assert store.login_failures(keys, T0 + timedelta(minutes=1)) == {keys[0]: 1, keys[1]: 1}
    store.clear_login_failures("address:abc")
    assert store.login_failures(keys, T0 - timedelta(seconds=1)) == {keys[0]: 3, keys[1]: 0}
    assert store.login_failures(("ip:other",), T0) == {"ip:other": 0}
    store.close()


def test_totp_steps_and_recovery_codes_are_used_once(store_url: str) -> None:
    store = Store.open(store_url)
    store.add_operator("ada@example.org", "admin", "hash", T0, _audit("operator.add"))
    assert store.claim_totp_step("ada@example.org", 100)
    assert not store.claim_totp_step("ada@example.org", 100)  # the same code again
    assert not store.claim_totp_step("ada@example.org", 99)  # an older one
    assert store.claim_totp_step("ada@example.org", 101)
    assert store.operator("ada@example.org").totp_last_step == 101  # type: ignore[union-attr]
    store.update_operator("ada@example.org", None, recovery_codes='["a", "b"]')
    assert store.swap_recovery_codes("ada@example.org", '["a", "b"]', '["b"]')
    assert not store.swap_recovery_codes("ada@example.org", '["a", "b"]', '["a"]')  # raced
    assert store.operator("ada@example.org").recovery_codes == '["b"]'  # type: ignore[union-attr]
    store.close()


def test_the_last_admin_stays_and_a_removed_operator_loses_their_sessions(store_url: str) -> None:
    store = Store.open(store_url)
    store.add_operator("ada@example.org", "admin", "hash", T0, _audit("operator.add"))
    store.add_operator("bo@example.org", "viewer", "hash", T0, _audit("operator.add"))
    assert store.remove_operator("ada@example.org", _audit("operator.remove")) == "last admin"
    store.create_console_session("hb", "bo@example.org", "ok", T0, T0 + timedelta(hours=1), None)
    assert store.remove_operator("bo@example.org", _audit("operator.remove")) == "removed"
    assert store.console_session("hb", T0) is None
    assert store.remove_operator("bo@example.org", _audit("operator.remove")) == "missing"
    assert [e.action for e in store.audit_entries(10)] == [
        "operator.remove",
        "operator.add",
        "operator.add",
    ]
    store.close()


def test_issue_pages_by_keyset(store_url: str) -> None:
    store = Store.open(store_url)
    for day in range(1, 6):
        store.create_issue("daily", f"2026-12-0{day}", f"Issue {day}", [], T0)
    first = store.issue_page(2)
    assert [i.period for i in first] == ["2026-12-05", "2026-12-04"]
    second = store.issue_page(2, first[-1].id)
    assert [i.period for i in second] == ["2026-12-03", "2026-12-02"]
    assert [i.period for i in store.issue_page(2, second[-1].id)] == ["2026-12-01"]
    store.close()
