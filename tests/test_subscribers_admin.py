"""The `publisher subscribers` commands as an operator runs them: real CLI subprocesses, real
SQLite files and (where the store code differs by dialect) the local PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from publisher import config as config_module
from publisher.app import open_app
from publisher.compose.subscriptions import AddressCheck, email_hash
from publisher.errors import SubscriberError
from tests.conftest import run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
TWO_DIGESTS = (
    '[[digests]]\nid = "daily"\ntitle = "Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "UTC"\nsubject = "{title}"\n\n'
    '[[digests]]\nid = "weekly"\ntitle = "Weekly"\nschedule = "0 7 * * mon"\n'
    'timezone = "UTC"\nsubject = "{title}"\n'
)


def _config(tmp_path: Path, store_url: str | None = None) -> Path:
    return write_config(tmp_path, digests=TWO_DIGESTS, store_url=store_url)


def _cli(config: Path, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    return run_cli(config, "subscribers", *args, now=NOW, check=check)


def _export(config: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_cli(config, "export").stdout)))


def _rows(config: Path, email: str) -> dict[str, tuple[str, str, str]]:
    """{digest: (status, frequency, tags)} of one address, read back through export."""
    return {
        r["digest"]: (r["status"], r["frequency"], r["tags"])
        for r in _export(config)
        if r["email"] == email
    }


# -- add ----------------------------------------------------------------------------------


def test_add_frequency_on_an_existing_subscriber_joins_no_digest(tmp_path: Path) -> None:
    config = _config(tmp_path)
    added = _cli(config, "add", "ana@example.org", "--digest", "daily").stdout
    out = _cli(config, "add", "ana@example.org", "--frequency", "weekly").stdout
    # The defect: this used to subscribe Ana to every digest as well.
    assert _rows(config, "ana@example.org") == {"daily": ("active", "weekly", "")}
    assert added.startswith("added ana@example.org to daily (every)"), added
    assert out.startswith("ana@example.org: updated; now in daily (weekly)"), out
    again = _cli(config, "add", "ana@example.org", "--digest", "daily").stdout
    assert again.startswith("ana@example.org: already subscribed"), again
    joined = _cli(config, "add", "ana@example.org", "--digest", "weekly").stdout
    assert joined.startswith("ana@example.org: joined weekly"), joined
    assert set(_rows(config, "ana@example.org")) == {"daily", "weekly"}


def _erase(config: Path, address: str) -> None:
    app = open_app(config_module.load(config))
    try:
        sub = app.store.find_subscriber(address)
        assert sub is not None
        assert app.store.erase_subscriber(sub.id, email_hash(address), app.clock())
    finally:
        app.store.close()


def _bounce(config: Path, address: str) -> None:
    app = open_app(config_module.load(config))
    try:
        app.store.set_subscriber_status(address, "bounced", app.clock())
    finally:
        app.store.close()


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("bounced", "is bounced"),
        ("unsubscribed", "is unsubscribed"),
        ("erased", "asked for their data to be erased"),
        ("complaint", "complained about our mail"),
    ],
)
def test_add_never_reactivates_without_the_flag(tmp_path: Path, how: str, said: str) -> None:
    config = _config(tmp_path)
    _cli(config, "add", "ana@example.org", "--digest", "daily")
    if how == "bounced":
        _bounce(config, "ana@example.org")
    elif how == "unsubscribed":
        _cli(config, "remove", "ana@example.org")
    elif how == "erased":
        _erase(config, "ana@example.org")
    else:
        out = _cli(config, "remove", "ana@example.org", "--complaint").stdout
        assert "suppressed (complaint)" in out
    before = _export(config)
    refused = _cli(config, "add", "Ana@example.org", "--digest", "weekly", check=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("refused: ")
    assert said in refused.stderr and "--reactivate" in refused.stderr
    assert _export(config) == before  # nothing changed
    back = _cli(config, "add", "ana@example.org", "--digest", "weekly", "--reactivate").stdout
    assert "weekly (every)" in back
    assert _rows(config, "ana@example.org")["weekly"][0] == "active"
    # The suppression is lifted by the explicit re-add, not before.
    assert "suppressed" not in _cli(config, "list").stdout


def test_remove_digest_leaves_one_and_the_last_is_leaving(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _cli(config, "add", "ana@example.org")
    out = _cli(config, "remove", "ana@example.org", "--digest", "daily").stdout
    assert "from daily (status active); still in weekly" in out
    assert _rows(config, "ana@example.org") == {"weekly": ("active", "every", "")}
    out = _cli(config, "remove", "ana@example.org", "--digest", "weekly").stdout
    assert "(status unsubscribed)" in out


# -- set ----------------------------------------------------------------------------------


def test_set_changes_only_what_it_is_given(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _cli(config, "add", "ana@example.org", "--tags", "research trials", "--name", "Ana")
    out = _cli(config, "set", "ana@example.org", "--digest", "weekly", "--frequency", "daily").stdout
    assert out.startswith("set ana@example.org: weekly (daily; topics: research trials)"), out
    assert _rows(config, "ana@example.org") == {
        "daily": ("active", "every", "research trials"),
        "weekly": ("active", "daily", "research trials"),
    }
    _cli(config, "set", "ana@example.org", "--tags", "")
    assert _rows(config, "ana@example.org") == {
        "daily": ("active", "every", ""),
        "weekly": ("active", "daily", ""),
    }
    assert [r["name"] for r in _export(config)] == ["Ana", "Ana"]
    # set never joins a digest and says how to.
    _cli(config, "remove", "ana@example.org", "--digest", "weekly")
    missing = _cli(config, "set", "ana@example.org", "--digest", "weekly", "--tags", "x", check=False)
    assert missing.returncode == 1
    assert "not subscribed to 'weekly'" in missing.stderr and "add ana@example.org --digest weekly" in missing.stderr
    unknown = _cli(config, "set", "nobody@example.org", "--tags", "x", check=False)
    assert unknown.returncode == 1 and "no subscriber" in unknown.stderr
    assert _cli(config, "set", "ana@example.org", check=False).returncode == 2


# -- list ---------------------------------------------------------------------------------


def test_list_shows_frequency_topics_and_erased(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _cli(config, "add", "ana@example.org", "--digest", "daily", "--frequency", "weekly",
         "--tags", "research")  # fmt: skip
    _cli(config, "add", "bo@example.org", "--digest", "daily")
    _erase(config, "bo@example.org")
    listing = _cli(config, "list").stdout
    [line] = [ln for ln in listing.splitlines() if "ana@example.org" in ln]
    assert "daily" in line and "weekly" in line and "research" in line
    assert "erased.invalid" not in listing and "1 subscriber(s)" in listing
    erased = _cli(config, "list", "--status", "erased").stdout
    assert "erased" in erased and "1 subscriber(s)" in erased and "ana@" not in erased


# -- import: encodings and malformed rows ---------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe")]
)
def test_import_reads_utf8_and_utf16_with_bom(tmp_path: Path, encoding: str, bom: bytes) -> None:
    config = _config(tmp_path)
    path = tmp_path / "subs.csv"
    path.write_bytes(bom + "email,name\r\nzoe@example.org,Zoë Ñúñez\r\n".encode(encoding))
    assert "imported 1 new" in _cli(config, "import", str(path)).stdout
    assert {r["name"] for r in _export(config)} == {"Zoë Ñúñez"}


def test_import_of_latin1_is_one_clear_error_then_works_with_encoding(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = tmp_path / "excel.csv"
    path.write_bytes("email,name\nana@example.org,Ana\nzoe@example.org,Zoé\n".encode("latin-1"))
    result = _cli(config, "import", str(path), check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "excel.csv:3" in result.stderr and "--encoding" in result.stderr
    assert _export(config) == []  # nothing written before the file was known to decode
    assert "imported 2 new" in _cli(config, "import", "--encoding", "cp1252", str(path)).stdout
    assert {r["name"] for r in _export(config)} == {"Ana", "Zoé"}
    bad = _cli(config, "import", "--encoding", "klingon", str(path), check=False)
    assert bad.returncode == 2 and "--encoding" in bad.stderr


def test_malformed_rows_are_rejected_by_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = tmp_path / "subs.csv"
    path.write_text(
        "email,name,digests\n"
        'ana@example.org,"Ana Unclosed,daily\n'  # 2: the quote never closes
        "bo@example.org,Bo,weekly\n"  # 3: fine, and not swallowed by line 2
        "cy@example.org,Cy,daily,surplus\n"  # 4: one field too many
        'dee@example.org,"Dee"x,daily\n'  # 5: text after a closing quote
        "\n"  # 6: blank lines are skipped
        "eve@example.org,Eve,daily,\n",  # 7: an empty extra field (Excel) is fine
        encoding="utf-8",
    )
    result = _cli(config, "import", str(path), check=False)
    assert result.returncode == 1
    assert "imported 2 new, 0 already present, 3 rejected" in result.stdout
    assert "subs.csv:2: malformed CSV row: a quoted field is not closed" in result.stderr
    assert "subs.csv:4: 4 fields, but the header has 3" in result.stderr
    assert "subs.csv:5: malformed CSV row" in result.stderr
    assert {r["email"]: r["digest"] for r in _export(config)} == {
        "bo@example.org": "weekly",
        "eve@example.org": "daily",
    }


# -- import and export: round trip, suppressions, batches (both stores) -----------------------


def test_export_import_round_trip_keeps_frequency_and_topics(
    tmp_path: Path, store_url: str
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    config = _config(first, store_url)
    _cli(config, "add", "ana@example.org", "--name", "Ana", "--digest", "daily",
         "--frequency", "weekly", "--tags", "research trials")  # fmt: skip
    _cli(config, "add", "ana@example.org", "--digest", "weekly", "--tags", "surgery")
    _cli(config, "add", "bo@example.org", "--name", "=HYPERLINK(1)", "--digest", "weekly")
    _cli(config, "add", "cy@example.org")
    _cli(config, "remove", "cy@example.org")
    exported = _cli(config, "export").stdout
    assert exported.splitlines()[0] == "email,name,status,digest,frequency,tags"
    assert "ana@example.org,Ana,active,daily,weekly,research trials" in exported
    assert "'=HYPERLINK(1)" in exported  # formula-safe
    second = tmp_path / "second"
    second.mkdir()
    dump = second / "export.csv"
    dump.write_text(exported, encoding="utf-8")
    fresh = _config(second, f"sqlite:///{second / 'copy.db'}")
    out = _cli(fresh, "import", str(dump)).stdout
    assert "imported 3 new (1 kept as unsubscribed" in out and "0 rejected" in out
    assert _export(fresh) == _export(config)
    assert {r["name"] for r in _export(fresh)} == {"Ana", "'=HYPERLINK(1)", ""}


def test_import_honours_every_suppression_reason(tmp_path: Path, store_url: str) -> None:
    config = _config(tmp_path, store_url)
    _cli(config, "add", "gone@example.org")
    _erase(config, "gone@example.org")
    _cli(config, "remove", "angry@example.org", "--complaint")  # never on the list
    path = tmp_path / "subs.csv"
    path.write_text(
        "email\nGone@example.org\nangry@example.org\nnew@example.org\n", encoding="utf-8"
    )
    result = _cli(config, "import", str(path), check=False)
    assert result.returncode == 1
    assert "imported 1 new, 0 already present, 2 rejected" in result.stdout
    assert "subs.csv:2: gone@example.org asked for their data to be erased" in result.stderr
    assert "subs.csv:3: angry@example.org complained about our mail" in result.stderr
    assert [r["email"] for r in _export(config)] == ["new@example.org", "new@example.org"]


def test_import_across_batches_on_both_stores(tmp_path: Path, store_url: str) -> None:
    # More rows than one batch (5,000): an address's rows in two batches, addresses already
    # present, bad rows in between; the counts and the stored rows must all be right.
    config = _config(tmp_path, store_url)
    _cli(config, "add", "left@example.org", "--digest", "daily")
    _cli(config, "remove", "left@example.org")
    lines = ["email,name,status,digest,frequency,tags"]
    for i in range(6000):
        lines.append(f"p{i}@example.org,P {i},active,daily,{('every', 'daily', 'weekly')[i % 3]},t{i % 7}")
        if i == 10:
            lines.append("not-an-address,X,active,daily,every,")
            lines.append("left@example.org,Back,active,daily,every,")
    lines.append("p1@example.org,P 1,active,weekly,every,late")  # p1's second row, next batch
    lines.append("p2@example.org,P 2,active,nosuch,every,")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _cli(config, "import", str(path), check=False)
    assert "imported 6000 new, 1 already present, 2 rejected" in result.stdout, result.stdout
    assert "big.csv:13: invalid address 'not-an-address'" in result.stderr
    assert "big.csv:6005: unknown digest 'nosuch'" in result.stderr
    rows = _export(config)
    assert len(rows) == 6002  # 6000 + p1's weekly + left's old row
    p1 = {r["digest"]: (r["frequency"], r["tags"]) for r in rows if r["email"] == "p1@example.org"}
    assert p1 == {"daily": ("daily", "t1"), "weekly": ("every", "late")}
    assert [r["status"] for r in rows if r["email"] == "left@example.org"] == ["unsubscribed"]
    # A second run changes nothing.
    again = _cli(config, "import", str(path), check=False).stdout
    assert "imported 0 new, 6001 already present, 2 rejected" in again, again


# -- the address check --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "Ana@Example.ORG", " bo+news@sub.example.org ", "a..b@example.org", ".a@example.org",
        "a@exa_mple.org", "a@localhost", "a@test", "x@münchen.de", "ü@example.org",
        '"q"@example.org', "a@[1.2.3.4]", "a@ex..org", "a" * 65 + "@example.org",
        "a@" + "b" * 250 + ".org", "o'brien@example.org", "a@-x.org", "@example.org", "a@",
    ],
)  # fmt: skip
def test_fast_address_check_answers_like_email_validator(raw: str) -> None:
    check = AddressCheck()
    try:
        expected: str | None = validate_email(
            raw.strip(), check_deliverability=False, allow_smtputf8=False
        ).normalized.lower()
    except EmailNotValidError:
        expected = None
    for _ in range(2):  # the second time the domain comes from the cache
        try:
            got: str | None = check(raw)
        except SubscriberError:
            got = None
        assert got == expected
