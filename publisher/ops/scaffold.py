"""``publisher init``: scaffold a new site folder (writes files), like ``pelican-quickstart``.

A site is a commented ``config.toml`` (the ``file`` transport, SQLite, one Markdown
source), an example article in ``content/`` and an empty ``templates/`` folder for
overrides. The starter files ship inside the package (``publisher/starter/``), so an
installed wheel needs nothing from the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from publisher.errors import PublisherError

CONFIG_NAME = "config.toml"
ARTICLE_NAME = "welcome.md"
_DATE_TOKEN = "PUBLISHER_INIT_DATE"


@dataclass
class InitReport:
    """What ``init`` created, replaced and left alone, as paths."""

    created: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def starter_text(name: str) -> str:
    """The text of a starter file shipped in the package (``config.toml``, ``welcome.md``)."""
    return resources.files("publisher.ops").joinpath("starter", name).read_text(encoding="utf-8")


def init_site(folder: Path, now: datetime, *, force: bool = False) -> InitReport:
    """Write a new site into ``folder`` (created if missing).

    An existing ``config.toml`` is replaced only with ``force``; an existing example
    article or ``templates/`` folder is always kept. The article is dated an hour before
    ``now``, so the first run finds it new and puts it in the first issue.
    """
    config = folder / CONFIG_NAME
    article = folder / "content" / ARTICLE_NAME
    templates = folder / "templates"
    # Every refusal comes before the first write, so a refused init leaves no half a site.
    if config.exists() and not force:
        raise PublisherError(f"{config} already exists; pass --force to overwrite it")
    for path, kind in ((config, "a file"), (folder, "a folder"), (article.parent, "a folder"),
                       (templates, "a folder")):  # fmt: skip
        if path.exists() and path.is_dir() != (kind == "a folder"):
            raise PublisherError(f"{path} exists and is not {kind}")

    report = InitReport()
    folder.mkdir(parents=True, exist_ok=True)
    (report.replaced if config.exists() else report.created).append(config)
    config.write_text(starter_text(CONFIG_NAME), encoding="utf-8")
    if article.exists():
        report.kept.append(article)
    else:
        article.parent.mkdir(exist_ok=True)
        date = (now - timedelta(hours=1)).replace(microsecond=0).isoformat()
        article.write_text(starter_text(ARTICLE_NAME).replace(_DATE_TOKEN, date), encoding="utf-8")
        report.created.append(article)
    if templates.is_dir():
        report.kept.append(templates)
    else:
        templates.mkdir()
        report.created.append(templates)
    return report
