"""The subscriber pages in a real browser: Debian's headless Chromium driven by Playwright.

Subscribe, confirm from the emailed link, change preferences, with screenshots at 375 px
and 1280 px. Runs when Chromium is installed, and always in CI (``.ci/run`` installs it).
Playwright only drives the system browser (``executable_path``); it never downloads one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import require_module, require_tool, run_cli
from tests.test_web_server import NOW, Served, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (375, 1280)



@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # Checked before the server starts: a missing browser skips here, and fails under CI.
    require_tool("chromium", hint="apt-get install chromium")
    require_module("playwright.sync_api", hint="pip install -e '.[test]'")
    yield from start_server(tmp_path, NOW)


def _confirm_link(outbox: Path, url: str) -> str:
    [path] = sorted(outbox.glob("confirm-*.eml"))
    message = message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(rf"{re.escape(url)}/confirm/\S+", text)
    assert match, text
    return match.group(0)


def _shoot(page, tmp_path: Path, name: str) -> list[Path]:  # type: ignore[no-untyped-def]
    """Screenshots of the current page at each width; no sideways scrolling at any."""
    shots = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{name} scrolls sideways at {width}px ({scroll}px)"
        shot = tmp_path / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5000
        shots.append(shot)
    return shots


def test_subscribe_confirm_and_change_preferences_in_chromium(
    served: Served, tmp_path: Path
) -> None:
    sync_api = require_module("playwright.sync_api")
    run_cli(served.config, "collect", now=NOW)  # stored articles' tags become topics
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(f"{served.url}/subscribe")
            # The stylesheet loaded under the CSP: the honeypot is out of sight.
            assert (
                page.evaluate("getComputedStyle(document.querySelector('.hp')).position")
                == "absolute"
            )
            page.fill("#email", "Browser.Reader@Example.org")
            page.fill("#name", "Bea")
            page.check("input[name=digest][value=daily]")
            page.check("input[name=tag][value=research]")
            _shoot(page, tmp_path, "subscribe")
            page.click("button[type=submit]")
            assert page.locator("h1").inner_text() == "Check your inbox"

            page.goto(_confirm_link(tmp_path / "outbox", served.url))
            assert page.locator("h1").inner_text() == "Confirm your subscription"
            page.click("text=Yes, subscribe me")
            assert page.locator("h1").inner_text() == "You are subscribed"
            page.click("text=Choose topics and how often")

            assert page.locator("h1").inner_text() == "Your subscription"
            assert page.is_checked("input[name=digest][value=daily]")
            assert page.is_checked("input[name=tag][value=research]")
            page.fill("#name", "Bea Reader")
            page.check("input[name=frequency][value=weekly]")
            page.check("input[name=tag][value=immunotherapy]")
            page.click("text=Save")
            assert "Saved." in page.locator(".notice").inner_text()
            assert page.is_checked("input[name=frequency][value=weekly]")
            assert page.is_checked("input[name=tag][value=immunotherapy]")
            _shoot(page, tmp_path, "preferences")
        finally:
            browser.close()
    assert problems == [], problems  # nothing blocked by the CSP, no errors
    listing = run_cli(served.config, "subscribers", "list", "--status", "active", now=NOW).stdout
    assert "browser.reader@example.org" in listing and "Bea Reader" in listing
