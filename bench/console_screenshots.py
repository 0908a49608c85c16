"""Screenshots of the operators' console in Chromium at 375 and 1280 px, light and dark.

Sets up a throw-away site in a temporary folder (the sample articles, 40 subscribers, an
admin), sends one issue through ``publisher worker`` into the file outbox, starts
``publisher serve``, logs in with Playwright and shoots each page of :data:`PAGES` (a page
that answers 404, not built yet, is skipped). Writes ``<out>/console-<page>-<width>-<scheme>.png``,
prints each page's ``scrollWidth`` against the window and exits 1 if a page scrolls
sideways at 375 px. (``bench/screenshots.py`` shoots the email itself.)

Run: .venv/bin/python bench/console_screenshots.py [--out screenshots]
Needs Debian's ``chromium`` (apt-get install chromium) and the ``test`` extra (playwright).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "screenshots only, thrown away"
# (name, path under /admin/): append a page here to shoot it too.
PAGES = [
    ("dashboard", ""),
    ("issues", "issues"),
    ("issue", "issues/1"),
    ("subscribers", "subscribers"),
    ("subscriber", "subscribers/1"),
    ("import", "subscribers/import"),
    ("digests", "digests"),
    ("audit", "audit"),
    ("webhooks", "webhooks"),
    ("operators", "operators"),
    ("tokens", "tokens"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def cli(folder: Path, *args: str, stdin: str | None = None) -> None:
    env = {**os.environ, "PUBLISHER_SECRET": "screenshots"}
    subprocess.run([sys.executable, "-m", "publisher", "--config", str(folder / "config.toml"),
                    *args], cwd=folder, env=env, input=stdin, text=True, check=True,
                   capture_output=True)  # fmt: skip


def site(folder: Path, port: int) -> None:
    """A config on the sample content, subscribers, an admin and one sent issue."""
    shutil.copytree(REPO / "content", folder / "content", ignore=shutil.ignore_patterns("*.csv"))
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace(
        'base_url = "http://127.0.0.1:8080"', f'base_url = "http://127.0.0.1:{port}"'
    )
    (folder / "config.toml").write_text(text, encoding="utf-8")
    rows = "".join(f"reader{i}@example.net,Reader {i}\n" for i in range(40))
    (folder / "subscribers.csv").write_text("email,name\n" + rows, encoding="utf-8")
    cli(folder, "collect")
    cli(folder, "subscribers", "import", "subscribers.csv")
    cli(folder, "operators", "add", "admin@example.org", "--role", "admin", "--password-stdin",
        stdin=PASSWORD)  # fmt: skip
    digest = next(line.split('"')[1] for line in text.splitlines() if line.startswith("id = "))
    cli(folder, "send", digest, "--queue-only")
    cli(folder, "worker", "--until-idle")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shoot(url: str, out: Path) -> bool:
    """Every page at both widths in both schemes; False if one scrolls sideways at 375."""
    from playwright.sync_api import sync_playwright

    ok = True
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        for scheme in ("light", "dark"):
            page = browser.new_context(color_scheme=scheme).new_page()
            page.goto(f"{url}/admin/login")
            page.fill("#email", "admin@example.org")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/admin/")
            for name, path in PAGES:
                if page.goto(f"{url}/admin/{path}").status == 404:  # type: ignore[union-attr]
                    print(f"{name}: not there yet, skipped")
                    continue
                page.wait_for_timeout(1500)  # the charts and live figures load
                for width in (375, 1280):
                    page.set_viewport_size({"width": width, "height": 900})
                    page.wait_for_timeout(300)
                    target = out / f"console-{name}-{width}-{scheme}.png"
                    page.screenshot(path=str(target), full_page=True)
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    verdict = "ok" if scroll <= width else "SCROLLS SIDEWAYS"
                    print(f"wrote {target.name}: scrollWidth {scroll} px at {width} px: {verdict}")
                    ok &= scroll <= width
        browser.close()
    return ok


def main() -> int:
    """Build the site, serve it, shoot it."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), free_port()
        site(folder, port)
        env = {**os.environ, "PUBLISHER_SECRET": "screenshots"}
        server = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(folder / "config.toml"), "serve",
             "--port", str(port)], cwd=folder, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{url}/admin/login", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            ok = shoot(url, args.out)
        finally:
            server.terminate()
            server.wait(timeout=15)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
