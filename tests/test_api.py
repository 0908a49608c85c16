"""The HTTP API through the real server, as an integrator uses it.

``publisher serve`` runs as a subprocess; tokens come from ``publisher tokens create``;
requests go over HTTP with httpx. Checked here: every refusal of a token (missing,
unknown, revoked, expired, short scope) and the one error shape; subscribers' whole life
(double opt-in with its confirmation mail, confirmed add, change, erasure) with its audit
entries; send-now that only queues, pause, resume, cancel, resend; an idempotent POST
replayed and a reused key refused; the per-token rate limit; and keyset pages over 10,000
subscribers (SQLite and PostgreSQL) that return each exactly once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from publisher.app import open_app
from publisher.config import load
from publisher.models import AuditEntry
from tests.api_support import NOW, Live, serve
from tests.conftest import run_cli

LATER = "2027-06-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("api")
    yield from serve(folder, extra="\n[api]\nrequests_per_minute = 100000\n")


@pytest.fixture(scope="module")
def tokens(live: Live) -> dict[str, str]:
    return {scope: live.token(f"t-{scope}", scope) for scope in ("read", "write", "send")}


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"]
    return str(body["error"]["message"])


def _audit(live: Live, actor: str) -> list[AuditEntry]:
    app = open_app(load(live.config))
    try:
        return app.store.audit_entries(100, actor=actor)
    finally:
        app.store.close()


def test_tokens_are_checked_and_scopes_enforced(live: Live, tokens: dict[str, str]) -> None:
    with live.client(None) as anonymous:
        answer = anonymous.get("/subscribers")
        _error(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    for bad in ("pub_000000000000_" + "A" * 43, "not-a-token", tokens["read"] + "x"):
        with live.client(bad) as client:
            _error(client.get("/digests"), 401, "invalid_token")
    revoked = live.token("gone", "send")
    run_cli(live.config, "tokens", "revoke", "gone", now=NOW)
    expiring = live.token("short", "send", "--expires", "1d")
    with live.client(revoked) as client:
        _error(client.get("/digests"), 401, "invalid_token")
    with live.client(expiring) as client:
        assert client.get("/digests").status_code == 200

    new = {"email": "scope@example.org", "status": "confirmed"}
    with live.client(tokens["read"]) as read:
        assert read.get("/subscribers").status_code == 200
        assert read.get("/issues").status_code == 200
        message = _error(read.post("/subscribers", json=new), 403, "insufficient_scope")
        assert "'write'" in message and "'read'" in message
        _error(read.delete("/subscribers/1"), 403, "insufficient_scope")
    with live.client(tokens["write"]) as write:
        assert write.post("/subscribers", json=new).status_code == 201
        _error(write.post("/issues/send-now", json={"digest": "daily"}), 403, "insufficient_scope")
        _error(write.post("/issues/1/pause"), 403, "insufficient_scope")
    # Once expired, a token is refused: a second server on the same store, months later.
    later_dir = live.config.parent / "later"
    later_dir.mkdir()
    same_store = f"sqlite:///{live.config.parent / 'publisher.db'}"
    for later in serve(later_dir, store_url=same_store, now=LATER):
        with later.client(expiring) as client:
            _error(client.get("/digests"), 401, "invalid_token")
        with later.client(tokens["read"]) as client:
            assert client.get("/digests").status_code == 200


def test_errors_have_one_shape_under_the_api(live: Live, tokens: dict[str, str]) -> None:
    with live.client(tokens["send"]) as client:
        _error(client.get("/no/such/thing"), 404, "not_found")
        _error(client.get("/subscribers/999999"), 404, "not_found")
        _error(client.get("/subscribers/99999999999999999999"), 404, "not_found")
        _error(client.get("/issues/424242/stats"), 404, "not_found")
        _error(client.get("/digests/monthly/stats"), 404, "not_found")
        answer = client.put("/subscribers")
        _error(answer, 405, "method_not_allowed")
        assert set(answer.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
        _error(client.get("/subscribers", params={"limit": "0"}), 422, "invalid_request")
        _error(client.get("/subscribers", params={"status": "gone"}), 422, "invalid_request")
        _error(client.get("/subscribers", params={"cursor": "garbage"}), 422, "invalid_cursor")
        _error(client.get("/subscribers", params={"digest": "monthly"}), 422, "invalid_request")
        _error(
            client.post("/subscribers", content=b"{nope", headers={"content-type": "application/json"}),
            400,
            "invalid_json",
        )
        message = _error(client.post("/subscribers", json={"email": "x@example.org", "nmae": "X"}), 422, "invalid_request")
        assert "nmae" in message
        _error(client.post("/subscribers", json={"email": "not an address"}), 422, "invalid_request")
        huge = {"email": "big@example.org", "name": "x" * 20_000}
        _error(client.post("/subscribers", json=huge), 413, "body_too_large")
    # The subscriber pages keep their HTML error page.
    page = httpx.get(f"{live.url}/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_a_subscribers_life_through_the_api_is_audited(live: Live, tokens: dict[str, str]) -> None:
    outbox = live.config.parent / "outbox"
    with live.client(tokens["write"]) as client:
        # Double opt-in by default: pending, and the confirmation link is mailed.
        answer = client.post("/subscribers", json={"email": "Pat@Example.org", "name": "Pat"})
        assert answer.status_code == 202, answer.text
        pending = answer.json()
        assert pending["status"] == "pending" and pending["email"] == "pat@example.org"
        mails = [
            message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in outbox.glob("confirm-*.eml")
        ]
        confirm = [m for m in mails if "pat@example.org" in str(m["To"])]
        assert len(confirm) == 1 and "/confirm/" in confirm[0].get_body(("plain",)).get_content()

        # Confirmed at once, with topics and a frequency.
        answer = client.post(
            "/subscribers",
            json={"email": "robin@example.org", "name": "Robin", "status": "confirmed",
                  "topics": ["research"], "frequency": "weekly"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        robin = answer.json()
        assert robin["status"] == "active" and robin["digests"] == ["daily"]
        assert robin["subscriptions"] == [
            {"digest": "daily", "frequency": "weekly", "topics": ["research"]}
        ]
        assert client.get(f"/subscribers/{robin['id']}").json() == robin

        # Change only what is given.
        answer = client.patch(f"/subscribers/{robin['id']}", json={"name": "Robin B.", "frequency": "every"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == "Robin B."
        assert answer.json()["subscriptions"][0] == {"digest": "daily", "frequency": "every", "topics": ["research"]}
        # Leaving every digest is unsubscribing; digests do not come back by PATCH.
        left = client.patch(f"/subscribers/{robin['id']}", json={"digests": []}).json()
        assert left["status"] == "unsubscribed" and left["digests"] == []
        _error(client.patch(f"/subscribers/{robin['id']}", json={"digests": ["daily"]}), 409, "not_active")
        # An address that left is refused a confirmed add (they must ask again).
        _error(client.post("/subscribers", json={"email": "robin@example.org", "status": "confirmed"}), 409, "refused")

        found = client.get("/subscribers", params={"q": "ROBIN", "status": "unsubscribed"}).json()
        assert [s["id"] for s in found["data"]] == [robin["id"]] and found["next_cursor"] is None

        # Delete is erasure: nothing of the address is left to find.
        assert client.delete(f"/subscribers/{robin['id']}").status_code == 204
        erased = client.get(f"/subscribers/{robin['id']}").json()
        assert erased["status"] == "erased" and "robin" not in str(erased).lower()
        assert client.get("/subscribers", params={"q": "robin"}).json()["data"] == []

    entries = _audit(live, "token:t-write")
    actions = [e.action for e in entries]
    for action in ("subscriber.invite", "subscriber.add", "subscriber.update", "subscriber.erase"):
        assert action in actions, actions
    assert {e.ip for e in entries} == {"127.0.0.1"}
    erase = next(e for e in entries if e.action == "subscriber.erase")
    assert "robin" not in f"{erase.target} {erase.detail}".lower()


def test_send_now_only_queues_and_the_issue_can_be_steered(live: Live, tokens: dict[str, str]) -> None:
    run_cli(live.config, "collect", now=NOW)
    for n in range(3):
        run_cli(live.config, "subscribers", "add", f"steer{n}@example.org", now=NOW)
    outbox = live.config.parent / "outbox"
    with live.client(tokens["send"]) as client:
        answer = client.post("/issues/send-now", json={"digest": "daily"})
        assert answer.status_code == 202, answer.text
        result = answer.json()
        assert result["workers_alive"] == 0
        queued = result["data"][0]
        issue = queued["issue"]
        assert queued["created"] and queued["queued"] >= 3 and issue["status"] == "sending"
        assert issue["counts"]["queued"] == queued["queued"] and issue["counts"]["sent"] == 0
        # serve never sends: no digest went out.
        assert not [p for p in outbox.glob("*.eml") if not p.name.startswith("confirm-")]
        issue_id = issue["id"]

        paused = client.post(f"/issues/{issue_id}/pause")
        assert paused.status_code == 200 and paused.json()["issue"]["status"] == "paused"
        _error(client.post(f"/issues/{issue_id}/pause"), 409, "conflict")
        resumed = client.post(f"/issues/{issue_id}/resume", json={})
        assert resumed.json()["issue"]["status"] == "sending"
        assert resumed.json()["affected"] == queued["queued"]
        again = client.post("/issues/send-now", json={"digest": "daily"}).json()
        assert not any(q["created"] for q in again["data"])

        listed = client.get("/issues", params={"digest": "daily"}).json()
        assert issue_id in [i["id"] for i in listed["data"]]
        stats = client.get(f"/issues/{issue_id}/stats").json()
        assert stats["issue"]["counts"]["queued"] == queued["queued"] and stats["failures"] == []
        digest = client.get("/digests/daily/stats").json()
        assert digest["deliveries"]["queued"] >= queued["queued"] and digest["issues"]["sending"] >= 1
        digests = client.get("/digests").json()["data"]
        assert digests[0]["id"] == "daily" and digests[0]["last_issue_id"] == issue_id
        assert digests[0]["next_send_at"].startswith("2026-11-29T07:00:00")
        articles = client.get("/articles", params={"limit": 2})
        assert len(articles.json()["data"]) == 2 and 'rel="next"' in articles.headers["link"]

        cancelled = client.post(f"/issues/{issue_id}/cancel", json={"release_articles": False})
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["issue"]["status"] == "cancelled"
        assert cancelled.json()["issue"]["counts"]["skipped"] == queued["queued"]
        _error(client.post(f"/issues/{issue_id}/cancel"), 409, "conflict")
        requeued = client.post(f"/issues/{issue_id}/resend-failed")
        assert requeued.status_code in (200, 409)
    actions = [e.action for e in _audit(live, "token:t-send")]
    for action in ("issue.send_now", "issue.pause", "issue.resume", "issue.cancel"):
        assert action in actions, actions


def test_an_idempotent_post_runs_once(live: Live, tokens: dict[str, str]) -> None:
    outbox = live.config.parent / "outbox"
    body = {"email": "once@example.org", "name": "Once"}
    key = {"Idempotency-Key": "3f1c2a9e-once"}
    with live.client(tokens["write"]) as client:
        first = client.post("/subscribers", json=body, headers=key)
        assert first.status_code == 202, first.text
        # The same request again (keys in another order): the first answer, replayed.
        again = client.post("/subscribers", json={"name": "Once", "email": "once@example.org"}, headers=key)
        assert again.status_code == 202 and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        # One request, one confirmation mail.
        assert len([p for p in outbox.glob("confirm-*.eml") if "once@example.org" in p.read_text()]) == 1
        # The same key with another body is refused; the key is per token.
        message = _error(
            client.post("/subscribers", json={**body, "name": "Twice"}, headers=key),
            422,
            "idempotency_key_reused",
        )
        assert "different request" in message
        _error(client.post("/subscribers", json=body, headers={"Idempotency-Key": "has space"}), 422, "invalid_idempotency_key")
    with live.client(tokens["send"]) as other:
        mine = other.post("/subscribers", json={"email": "other@example.org"}, headers=key)
        assert mine.status_code == 202 and mine.json()["email"] == "other@example.org"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Live]:
    yield from serve(tmp_path, extra="\n[api]\nrequests_per_minute = 3\n")


def test_each_token_has_its_own_rate_limit(limited: Live) -> None:
    one, two = limited.token("one", "read"), limited.token("two", "read")
    with limited.client(one) as client:
        for _ in range(3):
            assert client.get("/digests").status_code == 200
        answer = client.get("/digests")
        message = _error(answer, 429, "rate_limited")
        assert 1 <= int(answer.headers["retry-after"]) <= 60 and "3 requests" in message
    with limited.client(two) as client:
        assert client.get("/digests").status_code == 200


@pytest.fixture
def disabled(tmp_path: Path) -> Iterator[Live]:
    yield from serve(tmp_path, extra="\n[api]\nenabled = false\n")


def test_the_api_can_be_turned_off(disabled: Live) -> None:
    assert httpx.get(f"{disabled.url}/api/v1/openapi.json").status_code == 404
    assert httpx.get(f"{disabled.url}/subscribe").status_code == 200


def _write_roster(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "digests", "tags"])
        for n in range(count):
            writer.writerow([f"user{n:05d}@example.org", "Even" if n % 2 == 0 else "Odd", "daily", ""])


def _walk(client: httpx.Client, params: dict[str, str]) -> list[int]:
    """Every page, by following the Link headers; the ids in order."""
    ids: list[int] = []
    answer = client.get("/subscribers", params=params)
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        ids.extend(s["id"] for s in page["data"])
        link = answer.headers.get("link")
        if link is None:
            assert page["next_cursor"] is None
            return ids
        assert page["next_cursor"] and f"cursor={page['next_cursor']}" in link
        next_url = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert next_url is not None
        answer = client.get(next_url.group(1))


def test_cursor_pages_return_ten_thousand_subscribers_each_exactly_once(
    tmp_path: Path, store_url: str
) -> None:
    for live in serve(tmp_path, extra="\n[api]\nrequests_per_minute = 100000\n", store_url=store_url):
        roster = tmp_path / "roster.csv"
        _write_roster(roster, 10_000)
        run_cli(live.config, "subscribers", "import", str(roster), now=NOW)
        with live.client(live.token("pager", "read")) as client:
            everyone = _walk(client, {"limit": "500"})
            assert len(everyone) == len(set(everyone)) == 10_000
            assert everyone == sorted(everyone, reverse=True)
            evens = _walk(client, {"q": "even", "digest": "daily", "limit": "333"})
            assert len(evens) == len(set(evens)) == 5_000
            assert set(evens) < set(everyone)
