"""Screenshots of a digest in headless Chromium at phone and desktop widths, light and dark.

Renders the preview of the sample issue (or an HTML file given with --html) and writes
``<out>/digest-<width>-<scheme>.png`` for widths 375 and 800 in light and dark colour
schemes. It also measures the page's ``scrollWidth`` at each width (through a copy of the
page with a one-line probe script, since the email itself carries no script) and exits 1
if the page scrolls sideways at 375 px.

Run: .venv/bin/python bench/screenshots.py [--html FILE] [--out screenshots]
Needs Debian's ``chromium`` (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# The email carries no script, so it is measured inside a probe page: an iframe exactly
# `width` CSS pixels wide (headless windows have a minimum width larger than a phone's)
# whose srcdoc is the email, and a script that reports the iframe document's scrollWidth.
PROBE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" style="width:{width}px;height:900px;border:0" srcdoc="{srcdoc}"></iframe>
<script>document.getElementById('f').addEventListener('load', function () {{
  var d = this.contentDocument.documentElement;
  document.title = 'scrollWidth=' + d.scrollWidth + ';innerWidth=' + this.contentWindow.innerWidth;
}});</script></body></html>"""


def chromium() -> str | None:
    """Path of the Chromium binary, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def sample_html() -> str:
    """The sample issue's HTML as a subscriber would get it (placeholders filled)."""
    from publisher.collect.markdown import parse_article
    from publisher.compose import messages, render
    from publisher.config import DigestConfig, SiteConfig

    site = SiteConfig(
        title="Pleura Health News",
        url="https://news.example.org",
        postal_address="Pleura Health News, 100 Example Street, Springfield",
    )
    digest = DigestConfig(id="daily", title="Pleura Daily", timezone="America/New_York")
    articles = []
    for i, path in enumerate(sorted((REPO / "content").glob("*.md"))):
        article = parse_article(path.read_bytes(), path.name, "newsroom", site.url)
        articles.append(article.__class__(**{**article.__dict__, "id": i + 1}))
    articles.sort(key=lambda a: a.published_at, reverse=True)
    similar = {a.id: render.similar_articles(a, articles) for a in articles}
    rendered = render.render_issue(
        render.load_templates(),
        site,
        digest,
        articles,
        datetime(2026, 11, 28, 12, tzinfo=UTC),
        similar=similar,
    )
    person = messages.Personal(
        1, "ana@example.org", "Ana", "https://x.example/u/t", "https://x.example/p/t"
    )
    return messages.fill_placeholders(rendered.html, person, html=True)


def run(binary: str, args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile."""
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def scroll_width(binary: str, page: Path, width: int, work: Path) -> tuple[int, int]:
    """(document scrollWidth, viewport width) of ``page`` at ``width`` CSS pixels."""
    probe = work / f"probe-{width}.html"
    srcdoc = html.escape(page.read_text(encoding="utf-8"), quote=True)
    probe.write_text(PROBE.format(width=width, srcdoc=srcdoc), encoding="utf-8")
    result = run(
        binary,
        [f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
        work / f"profile-probe-{width}",
    )
    match = re.search(r"scrollWidth=(\d+);innerWidth=(\d+)", result.stdout)
    if not match:
        raise RuntimeError(f"chromium gave no measurement: {result.stderr[-500:]}")
    return int(match.group(1)), int(match.group(2))


def main() -> int:
    """Write the screenshots and report horizontal scrolling; exit 1 if the phone view scrolls."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--html", type=Path, help="HTML file to shoot (default: the sample issue)")
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    binary = chromium()
    if binary is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        page = work / "digest.html"
        page.write_text(
            args.html.read_text(encoding="utf-8") if args.html else sample_html(), encoding="utf-8"
        )
        failed = False
        for width in (375, 800):
            for scheme in ("light", "dark"):
                target = args.out / f"digest-{width}-{scheme}.png"
                extra = (
                    ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
                    if scheme == "dark"
                    else []
                )
                run(
                    binary,
                    [
                        *extra,
                        f"--window-size={width},2400",
                        f"--screenshot={target}",
                        page.as_uri(),
                    ],
                    work / f"profile-{width}-{scheme}",
                )
                print(
                    f"wrote {target} ({target.stat().st_size} bytes)"
                    if target.exists()
                    else f"FAILED {target}"
                )
                failed |= not target.exists()
            scroll, viewport = scroll_width(binary, page, width, work)
            verdict = "ok" if scroll <= viewport else "SCROLLS SIDEWAYS"
            print(f"width {width}: scrollWidth {scroll} px, viewport {viewport} px: {verdict}")
            failed |= width == 375 and scroll > viewport
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
