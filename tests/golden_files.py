"""Golden files: compare rendered output with ``tests/golden/<name>``.

``PUBLISHER_REGEN_GOLDEN=1`` rewrites the files instead of comparing them, and the test
is then reported as skipped, not passed: it compared nothing. With ``CI=true`` that
switch is refused, loudly, since a CI run would otherwise compare each file with itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
REGEN_ENV = "PUBLISHER_REGEN_GOLDEN"


def assert_golden(name: str, actual: str) -> None:
    """Assert that ``actual`` equals the golden file ``name`` (or rewrite it, see above)."""
    path = GOLDEN / name
    if os.environ.get(REGEN_ENV) == "1":
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{REGEN_ENV}=1 is refused with CI=true: it would compare {name} with itself. "
                "Regenerate locally, review the diff and commit the golden files.",
                pytrace=False,
            )
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
        pytest.skip(f"rewrote {path}: review the diff and commit it")
    assert path.exists(), f"{path} missing: run with {REGEN_ENV}=1 to create it"
    assert actual == path.read_bytes().decode("utf-8"), (
        f"{name} differs ({REGEN_ENV}=1 rewrites it)"
    )
