"""The OpenAPI document against the live API: complete, and true (Schemathesis).

``publisher serve`` runs as a subprocess on a real store with articles, subscribers and
a queued issue. The document it serves at ``/api/v1/openapi.json`` is generated from the
route table; here it must list every ``/api/v1`` route of the running app and nothing
else, and Schemathesis, generating requests from that document (valid and invalid ones),
must find no server error, no undocumented status, header or content type, and no
response that breaks its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi import checks as openapi_checks
from starlette.routing import Mount, Route

from publisher.api import OPERATIONS, _version
from publisher.api.openapi import document
from publisher.config import load
from publisher.server import create_server
from tests.api_support import NOW, Live, serve
from tests.conftest import run_cli

API_LIMITS = "\n[api]\nrequests_per_minute = 1000000\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("api-schema")
    for live in serve(folder, extra=API_LIMITS):
        run_cli(live.config, "collect", now=NOW)
        for n in range(5):
            run_cli(live.config, "subscribers", "add", f"reader{n}@example.org", now=NOW)
        with live.client(live.token("seed", "send")) as client:
            answer = client.post("/issues/send-now", json={"digest": "daily"})
        assert answer.status_code == 202 and answer.json()["data"][0]["issue"], answer.text
        yield live


@pytest.fixture(scope="module")
def token(live: Live) -> str:
    return live.token("fuzz", "send")


def _api_routes(config: Path) -> set[tuple[str, str]]:
    """(METHOD, path) of every route under /api/v1 of the app `publisher serve` runs."""
    found: set[tuple[str, str]] = set()
    for route in create_server(load(config)).routes:
        if isinstance(route, Mount) and route.path == "/api/v1":
            for inner in route.routes:
                assert isinstance(inner, Route)
                path = inner.path.replace(":int}", "}")
                found.update((m, path) for m in inner.methods or () if m != "HEAD")
    return found


def test_every_api_route_is_in_the_generated_document_and_nothing_else(live: Live) -> None:
    spec = httpx.get(f"{live.url}/api/v1/openapi.json").json()
    assert spec == SPEC and spec["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, item in spec["paths"].items() for method in item
    }
    routes = _api_routes(live.config)
    assert len(routes) >= 14
    assert routes == documented
    # Every schema the document refers to is in it.
    text = str(spec)
    for name in spec["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in text
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in spec["components"]["schemas"], ref


# The document is generated from the code, so the tests can be generated from it at import
# time; the first test checks that the live server serves this very document.
SPEC = document(OPERATIONS, title="Pleura Health News", version=_version())
schema = schemathesis.openapi.from_dict(SPEC)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure in CI reproduces here
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_live_api_keeps_its_document(case: schemathesis.Case, live: Live, token: str) -> None:
    # Schema-valid data may still be refused by the rules (an unknown digest or address, a
    # state that forbids the action), so "positive data is accepted" cannot hold here;
    # every other check does, including that invalid data is refused.
    case.call_and_validate(
        base_url=f"{live.url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[openapi_checks.positive_data_acceptance],
        timeout=30,
    )
