"""Installable like any Python application: build the wheel, install it into a fresh venv,
then `publisher init site && cd site && publisher run --once` in an empty folder; and the
`init` command's own rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from publisher.config import load
from tests.conftest import REPO

# What a wheel build reads from the repository.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "publisher", "templates")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new operator: no pinned clock, no secrets, no repo on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PUBLISHER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return {**env, **extra}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (
        f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def test_wheel_installs_and_a_new_site_runs_from_an_empty_folder(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, source / name)
    dist = tmp_path / "dist"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(source)],
        tmp_path,
        _clean_env(),
    )
    build_log = build.stdout + build.stderr
    assert (
        "project.license" not in build_log and "License classifiers are deprecated" not in build_log
    )
    assert "BuildBackendWarning" not in build_log, build_log[-3000:]
    [wheel] = dist.glob("publisher-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"publisher/templates/email.css", "publisher/templates/digest.txt.j2",
            "publisher/templates/web/web.css", "publisher/ops/starter/config.toml"} <= names  # fmt: skip
    # The console ships its templates, script and vendored libraries (no CDN, no npm step).
    assert {"publisher/templates/admin/base.html.j2", "publisher/admin/static/admin.js",
            "publisher/admin/static/admin.css", "publisher/admin/static/vendor/htmx.min.js",
            "publisher/admin/static/vendor/htmx.LICENSE",
            "publisher/admin/static/vendor/uPlot.iife.min.js",
            "publisher/admin/static/vendor/uPlot.min.css",
            "publisher/admin/static/vendor/uPlot.LICENSE"} <= names  # fmt: skip
    # The dated snapshot of image-proxy ranges the engagement reports read.
    assert "publisher/services/image_proxies.json" in names

    # A fresh venv; the dependencies are reused from this test's environment through a .pth
    # file (no network), the package itself only from the wheel.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, _clean_env())
    py = venv / "bin" / "python"
    purelib = _run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        tmp_path,
        _clean_env(),
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_deps_from_test_env.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)],
        tmp_path,
        _clean_env(),
    )  # fmt: skip
    _run([sys.executable, "-m", "pip", "--python", str(py), "check"], tmp_path, _clean_env())

    empty = tmp_path / "empty"
    empty.mkdir()
    env = _clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    where = _run([str(py), "-c", "import publisher; print(publisher.__file__)"], empty, env)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not the checkout

    init = _run(["publisher", "init", "site"], empty, env)
    assert "created   site/config.toml" in init.stdout
    assert "created   site/content/welcome.md" in init.stdout
    assert "created   site/templates/" in init.stdout
    assert "next      cd site && publisher run --once" in init.stdout
    site = empty / "site"
    assert (site / "templates").is_dir() and not any((site / "templates").iterdir())

    run = _run(["publisher", "run", "--once"], site, env)
    out = run.stdout
    assert "collect   1 new, 0 updated, 0 unchanged, 0 error(s)" in out, out
    assert "feeds     wrote feeds/rss.xml, feeds/atom.xml, feeds/feed.json" in out, out
    assert "1 sent, 0 failed -> outbox/" in out and "done      1 message(s) sent, 0 failed" in out
    assert run.stderr == "", run.stderr
    [eml] = (site / "outbox").glob("*.eml")
    assert b"Welcome to My Newsletter" in eml.read_bytes()
    assert b"Welcome to My Newsletter" in (site / "feeds" / "rss.xml").read_bytes()
    assert (site / "feeds" / "atom.xml").exists() and (site / "feeds" / "feed.json").exists()


def _init(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "publisher", "init", *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_refuses_to_overwrite_a_config_without_force(tmp_path: Path) -> None:
    first = _init(tmp_path, "--email", "")
    assert first.returncode == 0, first.stderr
    assert "next      publisher run --once" in first.stdout  # already in the site folder
    config = load(tmp_path / "config.toml")  # the written config is valid
    assert [s.type for s in config.sources] == ["markdown"]
    assert config.delivery.transport == "file" and config.store_url.startswith("sqlite:///")
    assert config.site.templates_dir == tmp_path / "templates"
    assert not (tmp_path / "publisher.db").exists()  # no subscriber asked for: no store yet

    (tmp_path / "config.toml").write_text("# mine\n", encoding="utf-8")
    article = tmp_path / "content" / "welcome.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nMy edit.\n", encoding="utf-8")
    refused = _init(tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: config.toml already exists; pass --force to overwrite it"
    )
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == "# mine\n"

    forced = _init(tmp_path, "--force", "--email", "")
    assert forced.returncode == 0, forced.stderr
    assert (
        "replaced  config.toml" in forced.stdout and "kept      content/welcome.md" in forced.stdout
    )
    assert "My edit." in article.read_text(encoding="utf-8")  # the article is never replaced
    assert (tmp_path / "config.toml").read_text(encoding="utf-8").startswith("# publisher")


def test_init_rejects_a_bad_address_before_writing_anything(tmp_path: Path) -> None:
    result = _init(tmp_path, "site", "--email", "not-an-address")
    assert result.returncode == 1 and "invalid address 'not-an-address'" in result.stderr
    assert not (tmp_path / "site").exists()


def test_init_refuses_before_writing_when_a_folder_it_needs_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "templates").write_text("not a folder", encoding="utf-8")
    result = _init(tmp_path, "--email", "")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: templates exists and is not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["templates"]  # nothing written
